import pytest

from textkit import dedent, fill, indent, justify, truncate, truncate_words, wrap


def test_wrap_greedy_lines():
    assert wrap("the quick brown fox jumps over the lazy dog", 10) == [
        "the quick",
        "brown fox",
        "jumps over",
        "the lazy",
        "dog",
    ]


def test_wrap_line_exactly_width():
    assert wrap("ab cd ef", 5) == ["ab cd", "ef"]


def test_wrap_breaks_long_words():
    assert wrap("abcdefghij klm", 4) == ["abcd", "efgh", "ij", "klm"]


def test_wrap_long_word_after_short_word():
    assert wrap("a bcdef", 3) == ["a", "bcd", "ef"]


def test_wrap_width_one():
    assert wrap("ab c", 1) == ["a", "b", "c"]


def test_wrap_collapses_whitespace():
    assert wrap("  a \n\t b  ", 10) == ["a b"]


def test_wrap_empty_text():
    assert wrap("", 5) == []


def test_wrap_rejects_zero_width():
    with pytest.raises(ValueError):
        wrap("text", 0)


def test_fill_joins_with_newlines():
    assert fill("one two three", 7) == "one two\nthree"


def test_justify_distributes_extra_spaces_left_first():
    assert justify("the quick brown fox jumps over the lazy dog", 16) == [
        "the  quick brown",
        "fox  jumps  over",
        "the lazy dog",
    ]


def test_justify_single_word_line_is_padded():
    assert justify("abcdef gh", 7) == ["abcdef ", "gh"]


def test_justify_even_spacing():
    assert justify("a b c dddd", 7) == ["a  b  c", "dddd"]


def test_justify_empty_text():
    assert justify("", 5) == []


def test_indent_skips_blank_lines():
    assert indent("a\n\nb", "> ") == "> a\n\n> b"


def test_indent_whitespace_only_line_is_blank():
    assert indent("a\n  \nb", "# ") == "# a\n  \n# b"


def test_indent_blank_lines_when_not_skipping():
    assert indent("a\n\nb", "> ", skip_blank=False) == "> a\n> \n> b"


def test_dedent_removes_common_margin():
    assert dedent("    a\n      b\n    c") == "a\n  b\nc"


def test_dedent_ignores_blank_lines_for_margin():
    assert dedent("  a\n\n   \n  b") == "a\n\n\nb"


def test_dedent_no_common_margin():
    assert dedent("a\n  b") == "a\n  b"


def test_dedent_all_blank():
    assert dedent("\n  \n") == "\n\n"


def test_truncate_adds_ellipsis():
    assert truncate("hello world", 8) == "hello..."


def test_truncate_text_exactly_at_limit():
    assert truncate("hello", 5) == "hello"


def test_truncate_one_over_limit():
    assert truncate("hello!", 5) == "he..."


def test_truncate_limit_shorter_than_ellipsis():
    assert truncate("hello", 2) == ".."


def test_truncate_limit_equal_to_ellipsis():
    assert truncate("hello", 3) == "..."


def test_truncate_custom_ellipsis():
    assert truncate("abcdefgh", 5, ellipsis="~") == "abcd~"


def test_truncate_rejects_negative_limit():
    with pytest.raises(ValueError):
        truncate("abc", -1)


def test_truncate_words_drops_extra_words():
    assert truncate_words("one two three four", 2) == "one two..."


def test_truncate_words_exact_count_has_no_ellipsis():
    assert truncate_words("one  two", 2) == "one two"


def test_truncate_words_zero():
    assert truncate_words("one two", 0) == "..."


def test_truncate_words_rejects_negative():
    with pytest.raises(ValueError):
        truncate_words("one", -1)


def test_wrap_counts_separating_space():
    assert wrap("ab cd", 4) == ["ab", "cd"]


def test_wrap_resets_length_on_new_line():
    assert wrap("abcd ab cd", 4) == ["abcd", "ab", "cd"]


def test_wrap_three_words_fill_line_exactly():
    assert wrap("a b c", 5) == ["a b c"]


def test_truncate_zero_limit():
    assert truncate("abc", 0) == ""
