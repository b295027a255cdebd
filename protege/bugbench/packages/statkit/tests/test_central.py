import pytest

from statkit import (
    geometric_mean,
    harmonic_mean,
    mean,
    median,
    midrange,
    mode,
    modes,
    trimmed_mean,
    weighted_mean,
)


def test_mean_of_integers():
    assert mean([1, 2, 3, 4]) == pytest.approx(2.5)


def test_mean_of_single_value():
    assert mean([7]) == pytest.approx(7.0)


def test_mean_with_negative_numbers():
    assert mean([-4, -2, 9]) == pytest.approx(1.0)


def test_mean_accepts_generator():
    assert mean(x for x in [2, 4, 9]) == pytest.approx(5.0)


def test_mean_of_empty_raises():
    with pytest.raises(ValueError):
        mean([])


def test_weighted_mean_basic():
    assert weighted_mean([1, 2, 3], [3, 1, 0]) == pytest.approx(1.25)


def test_weighted_mean_zero_weight_ignores_value():
    assert weighted_mean([10, 100], [1, 0]) == pytest.approx(10.0)


def test_weighted_mean_length_mismatch_raises():
    with pytest.raises(ValueError):
        weighted_mean([1, 2, 3], [1, 1])


def test_weighted_mean_negative_weight_raises():
    with pytest.raises(ValueError):
        weighted_mean([1, 2], [2, -1])


def test_weighted_mean_all_zero_weights_raises():
    with pytest.raises(ValueError):
        weighted_mean([1, 2], [0, 0])


def test_median_odd_length_unsorted():
    assert median([9, 1, 5]) == 5


def test_median_even_length_averages_middle_pair():
    assert median([4, 1, 3, 2]) == pytest.approx(2.5)


def test_median_two_values():
    assert median([10, 20]) == pytest.approx(15.0)


def test_median_of_single_value():
    assert median([3]) == 3


def test_median_of_empty_raises():
    with pytest.raises(ValueError):
        median([])


def test_modes_single_winner():
    assert modes([1, 2, 2, 3]) == [2]


def test_modes_tie_returns_sorted_values():
    assert modes([5, 3, 5, 3, 1]) == [3, 5]


def test_modes_all_distinct_returns_everything():
    assert modes([3, 1, 2]) == [1, 2, 3]


def test_mode_tie_takes_smallest():
    assert mode([9, 9, 4, 4, 7]) == 4


def test_mode_with_strings():
    assert mode(["b", "a", "b"]) == "b"


def test_mode_of_empty_raises():
    with pytest.raises(ValueError):
        mode([])


def test_trimmed_mean_drops_extremes():
    assert trimmed_mean([1, 2, 3, 4, 100], 0.2) == pytest.approx(3.0)


def test_trimmed_mean_zero_proportion_is_mean():
    assert trimmed_mean([1, 2, 3, 10], 0.0) == pytest.approx(4.0)


def test_trimmed_mean_cut_rounds_down():
    assert trimmed_mean([1, 2, 3, 4, 50], 0.1) == pytest.approx(12.0)


def test_trimmed_mean_cuts_two_from_each_end():
    assert trimmed_mean([0, 1, 5, 6, 7, 20, 90], 0.3) == pytest.approx(6.0)


def test_trimmed_mean_fractional_result():
    assert trimmed_mean([1, 2, 5, 100], 0.25) == pytest.approx(3.5)


def test_trimmed_mean_proportion_half_raises():
    with pytest.raises(ValueError):
        trimmed_mean([1, 2, 3, 4], 0.5)


def test_trimmed_mean_negative_proportion_raises():
    with pytest.raises(ValueError):
        trimmed_mean([1, 2, 3, 4], -0.1)


def test_trimmed_mean_just_below_half_keeps_middle():
    assert trimmed_mean([1, 2, 30, 40], 0.49) == pytest.approx(16.0)


def test_trimmed_mean_odd_length_just_below_half_keeps_median():
    assert trimmed_mean([1, 2, 3, 40, 50], 0.45) == pytest.approx(3.0)


def test_geometric_mean_basic():
    assert geometric_mean([1, 4, 16]) == pytest.approx(4.0)


def test_geometric_mean_two_values():
    assert geometric_mean([2, 8]) == pytest.approx(4.0)


def test_geometric_mean_zero_raises():
    with pytest.raises(ValueError, match="positive"):
        geometric_mean([0, 4])


def test_geometric_mean_negative_raises():
    with pytest.raises(ValueError, match="positive"):
        geometric_mean([-1, 4])


def test_harmonic_mean_basic():
    assert harmonic_mean([1, 2, 4]) == pytest.approx(12 / 7)


def test_harmonic_mean_of_equal_values():
    assert harmonic_mean([5, 5]) == pytest.approx(5.0)


def test_harmonic_mean_zero_raises():
    with pytest.raises(ValueError, match="positive"):
        harmonic_mean([0, 3])


def test_midrange_basic():
    assert midrange([3, -1, 8, 2]) == pytest.approx(3.5)


def test_midrange_of_empty_raises():
    with pytest.raises(ValueError):
        midrange([])
