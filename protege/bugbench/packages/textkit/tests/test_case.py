from textkit import slugify, split_identifier, to_camel, to_kebab, to_pascal, to_snake, to_title


def test_split_identifier_camel_case():
    assert split_identifier("parseJsonValue") == ["parse", "json", "value"]


def test_split_identifier_acronym_followed_by_word():
    assert split_identifier("HTTPServerError") == ["http", "server", "error"]


def test_split_identifier_digit_then_upper_starts_word():
    assert split_identifier("getHTTP2Response") == ["get", "http2", "response"]


def test_split_identifier_digits_stay_attached():
    assert split_identifier("html5parser") == ["html5parser"]


def test_split_identifier_separators_and_spaces():
    assert split_identifier("Some-mixed_case words") == ["some", "mixed", "case", "words"]


def test_split_identifier_leading_and_trailing_underscores():
    assert split_identifier("__init__") == ["init"]


def test_split_identifier_single_uppercase_word():
    assert split_identifier("URL") == ["url"]


def test_split_identifier_empty_string():
    assert split_identifier("") == []


def test_to_snake_from_pascal():
    assert to_snake("XMLHttpRequest") == "xml_http_request"


def test_to_kebab_from_camel_with_digit():
    assert to_kebab("fooBar2Baz") == "foo-bar2-baz"


def test_to_camel_from_snake():
    assert to_camel("user_account_id") == "userAccountId"


def test_to_camel_single_word():
    assert to_camel("Name") == "name"


def test_to_camel_empty():
    assert to_camel("") == ""


def test_to_pascal_from_kebab():
    assert to_pascal("user-profile-id") == "UserProfileId"


def test_to_title_keeps_inner_minor_words_lowercase():
    assert to_title("the lord OF the rings") == "The Lord of the Rings"


def test_to_title_capitalizes_minor_word_at_end():
    assert to_title("what is it for") == "What Is It For"


def test_to_title_single_minor_word():
    assert to_title("of") == "Of"


def test_to_title_custom_minor_words():
    assert to_title("war and peace", frozenset({"peace"})) == "War And Peace"


def test_slugify_strips_accents_and_punctuation():
    assert slugify("Héllo, Wörld!") == "hello-world"


def test_slugify_collapses_runs_and_trims_edges():
    assert slugify("  --Hello   World--  ") == "hello-world"


def test_slugify_custom_separator():
    assert slugify("Data Set 2", separator="_") == "data_set_2"


def test_slugify_cuts_at_word_boundary():
    assert slugify("hello world again", max_length=13) == "hello-world"


def test_slugify_cut_exactly_before_separator():
    assert slugify("hello world again", max_length=11) == "hello-world"


def test_slugify_cut_keeps_all_words_that_fit():
    assert slugify("ab cd ef", max_length=6) == "ab-cd"


def test_slugify_max_length_not_reached():
    assert slugify("hello world", max_length=11) == "hello-world"


def test_slugify_single_long_word_is_hard_cut():
    assert slugify("superlongword", max_length=5) == "super"


def test_slugify_empty():
    assert slugify("!!!") == ""


def test_split_identifier_acronym_before_final_word():
    assert split_identifier("XMLTo") == ["xml", "to"]


def test_to_title_minor_word_second():
    assert to_title("war and peace") == "War and Peace"


def test_slugify_max_length_one():
    assert slugify("hello", max_length=1) == "h"


def test_slugify_cut_leaves_single_letter_word():
    assert slugify("a bcdef", max_length=3) == "a"


def test_slugify_separator_just_past_limit_is_ignored():
    assert slugify("abcd ef", max_length=3) == "abc"
