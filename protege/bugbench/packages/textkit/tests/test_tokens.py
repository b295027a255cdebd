import pytest

from textkit import (
    average_word_length,
    char_ngrams,
    most_common,
    ngrams,
    sentences,
    word_count,
    word_frequencies,
    words,
)


def test_words_keeps_inner_apostrophes_and_hyphens():
    assert words("It's a well-known fact") == ["It's", "a", "well-known", "fact"]


def test_words_drops_leading_and_trailing_marks():
    assert words("-dash 'quoted' end-") == ["dash", "quoted", "end"]


def test_words_double_hyphen_splits():
    assert words("fast--slow") == ["fast", "slow"]


def test_words_digits_count_as_word_characters():
    assert words("route 66, exit 4b!") == ["route", "66", "exit", "4b"]


def test_words_empty():
    assert words("  ...  ") == []


def test_word_count():
    assert word_count("one, two; three four-five") == 4


def test_word_frequencies_lowercases_in_first_seen_order():
    assert word_frequencies("The cat and the hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}


def test_word_frequencies_case_sensitive():
    assert word_frequencies("A a A", lowercase=False) == {"A": 2, "a": 1}


def test_most_common_orders_by_count():
    assert most_common("b a b c a b d", 2) == [("b", 3), ("a", 2)]


def test_most_common_ties_are_alphabetical():
    assert most_common("pear fig apple fig apple", 3) == [("apple", 2), ("fig", 2), ("pear", 1)]


def test_most_common_n_larger_than_vocabulary():
    assert most_common("x y", 5) == [("x", 1), ("y", 1)]


def test_most_common_rejects_negative_n():
    with pytest.raises(ValueError):
        most_common("x", -1)


def test_average_word_length():
    assert average_word_length("I am here") == pytest.approx(7 / 3)


def test_average_word_length_no_words():
    assert average_word_length("!?") == 0.0


def test_ngrams_trigrams():
    assert ngrams(["a", "b", "c", "d"], 3) == [("a", "b", "c"), ("b", "c", "d")]


def test_ngrams_n_equal_to_length():
    assert ngrams(["a", "b"], 2) == [("a", "b")]


def test_ngrams_n_longer_than_items():
    assert ngrams(["a", "b"], 3) == []


def test_ngrams_rejects_zero():
    with pytest.raises(ValueError):
        ngrams(["a"], 0)


def test_char_ngrams_bigrams():
    assert char_ngrams("hello", 2) == ["he", "el", "ll", "lo"]


def test_char_ngrams_short_text_yields_itself():
    assert char_ngrams("hi", 3) == ["hi"]


def test_char_ngrams_empty_text():
    assert char_ngrams("", 2) == []


def test_char_ngrams_rejects_zero():
    with pytest.raises(ValueError):
        char_ngrams("abc", 0)


def test_sentences_basic_punctuation():
    assert sentences("Hello there! How are you? I am fine.") == [
        "Hello there!",
        "How are you?",
        "I am fine.",
    ]


def test_sentences_abbreviation_does_not_split():
    assert sentences("Dr. Smith arrived. He was late") == ["Dr. Smith arrived.", "He was late"]


def test_sentences_runs_of_marks_stay_together():
    assert sentences("Wait... what?! Really.") == ["Wait...", "what?!", "Really."]


def test_sentences_initials_do_not_split():
    assert sentences("J. R. Tolkien wrote. Yes.") == ["J. R. Tolkien wrote.", "Yes."]


def test_sentences_decimal_point_does_not_split():
    assert sentences("Pi is 3.14 today. Ok.") == ["Pi is 3.14 today.", "Ok."]


def test_sentences_dotted_abbreviation():
    assert sentences("Use tools, e.g. saws. Then stop.") == ["Use tools, e.g. saws.", "Then stop."]


def test_sentences_empty_text():
    assert sentences("   ") == []


def test_words_single_letter_before_inner_mark():
    assert words("x-ray o'clock") == ["x-ray", "o'clock"]


def test_words_inner_mark_before_last_letter():
    assert words("don't") == ["don't"]


def test_most_common_zero():
    assert most_common("a b", 0) == []


def test_ngrams_unigrams():
    assert ngrams(["a", "b"], 1) == [("a",), ("b",)]


def test_char_ngrams_unigrams():
    assert char_ngrams("abc", 1) == ["a", "b", "c"]


def test_char_ngrams_single_character_text():
    assert char_ngrams("a", 2) == ["a"]


def test_sentences_stray_mark_is_own_sentence():
    assert sentences("Go! . Ok") == ["Go!", ".", "Ok"]
