import pytest

from textkit import (
    closest,
    common_prefix,
    common_suffix,
    hamming,
    jaccard,
    lcs_length,
    lcs_ratio,
    levenshtein,
    longest_common_subsequence,
    similarity,
)


def test_levenshtein_classic_example():
    assert levenshtein("kitten", "sitting") == 3


def test_levenshtein_is_symmetric_for_different_lengths():
    assert levenshtein("sitting", "kitten") == 3


def test_levenshtein_against_empty():
    assert levenshtein("", "abc") == 3


def test_levenshtein_identical():
    assert levenshtein("same", "same") == 0


def test_levenshtein_single_substitution():
    assert levenshtein("cat", "cut") == 1


def test_levenshtein_insert_and_delete():
    assert levenshtein("flaw", "lawn") == 2


def test_hamming_counts_differences():
    assert hamming("karolin", "kathrin") == 3


def test_hamming_empty_strings():
    assert hamming("", "") == 0


def test_hamming_rejects_unequal_lengths():
    with pytest.raises(ValueError):
        hamming("abc", "ab")


def test_common_prefix_of_several():
    assert common_prefix(["interview", "internet", "interval"]) == "inter"


def test_common_prefix_when_one_is_prefix_of_other():
    assert common_prefix(["abc", "ab"]) == "ab"


def test_common_prefix_none_shared():
    assert common_prefix(["abc", "xbc", "abd"]) == ""


def test_common_prefix_single_string():
    assert common_prefix(["alone"]) == "alone"


def test_common_prefix_empty_list():
    assert common_prefix([]) == ""


def test_common_suffix_of_several():
    assert common_suffix(["testing", "running", "sing"]) == "ing"


def test_lcs_length_classic():
    assert lcs_length("ABCBDAB", "BDCABA") == 4


def test_lcs_length_with_empty():
    assert lcs_length("abc", "") == 0


def test_longest_common_subsequence_tie_break():
    assert longest_common_subsequence("ABCBDAB", "BDCABA") == "BDAB"


def test_longest_common_subsequence_other_order():
    assert longest_common_subsequence("BDCABA", "ABCBDAB") == "BCBA"


def test_longest_common_subsequence_full_match():
    assert longest_common_subsequence("abc", "aXbYc") == "abc"


def test_longest_common_subsequence_disjoint():
    assert longest_common_subsequence("abc", "xyz") == ""


def test_similarity_partial():
    assert similarity("kitten", "sitting") == pytest.approx(4 / 7)


def test_similarity_both_empty():
    assert similarity("", "") == 1.0


def test_similarity_completely_different():
    assert similarity("abc", "xyz") == 0.0


def test_lcs_ratio_partial():
    assert lcs_ratio("abcd", "abed") == pytest.approx(0.75)


def test_lcs_ratio_different_lengths():
    assert lcs_ratio("ab", "abcd") == pytest.approx(4 / 6)


def test_lcs_ratio_both_empty():
    assert lcs_ratio("", "") == 1.0


def test_jaccard_bigrams():
    assert jaccard("night", "nacht") == pytest.approx(1 / 7)


def test_jaccard_identical():
    assert jaccard("abab", "baba") == pytest.approx(1.0)


def test_jaccard_trigrams():
    assert jaccard("abcd", "abce", n=3) == pytest.approx(1 / 3)


def test_jaccard_both_empty():
    assert jaccard("", "") == 1.0


def test_closest_picks_smallest_distance():
    assert closest("pythn", ["pylon", "python", "pythons"]) == "python"


def test_closest_first_candidate_wins_ties():
    assert closest("cat", ["bat", "cot", "cut"]) == "bat"


def test_closest_respects_max_distance():
    assert closest("xyz", ["apple", "xy"], max_distance=1) == "xy"


def test_closest_max_distance_is_inclusive():
    assert closest("abc", ["abd"], max_distance=1) == "abd"


def test_closest_nothing_within_max_distance():
    assert closest("xyz", ["apple"], max_distance=2) is None


def test_closest_max_distance_zero_requires_exact():
    assert closest("abc", ["abd", "abc"], max_distance=0) == "abc"


def test_closest_no_candidates():
    assert closest("abc", []) is None


def test_levenshtein_both_empty():
    assert levenshtein("", "") == 0


def test_common_prefix_shrinks_over_several_strings():
    assert common_prefix(["flower", "flow", "flight"]) == "fl"


def test_lcs_length_repeated_character():
    assert lcs_length("aa", "a") == 1


def test_lcs_length_repeated_character_in_second():
    assert lcs_length("ab", "aa") == 1


def test_longest_common_subsequence_first_exhausted():
    assert longest_common_subsequence("ab", "abc") == "ab"


def test_longest_common_subsequence_second_exhausted():
    assert longest_common_subsequence("abc", "ab") == "ab"


def test_longest_common_subsequence_skips_in_second():
    assert longest_common_subsequence("ab", "xa") == "a"


def test_longest_common_subsequence_skips_in_first():
    assert longest_common_subsequence("xa", "ab") == "a"


def test_jaccard_one_empty():
    assert jaccard("", "ab") == 0.0


def test_closest_without_limit_accepts_any_distance():
    assert closest("abc", ["xyz"]) == "xyz"


def test_closest_max_distance_zero_rejects_near_match():
    assert closest("abc", ["abd"], max_distance=0) is None
