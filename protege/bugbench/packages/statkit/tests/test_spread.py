import pytest

from statkit import (
    iqr,
    mean_absolute_deviation,
    normalize,
    percentile,
    quartiles,
    sample_stdev,
    sample_variance,
    stdev,
    value_range,
    variance,
    zscores,
)


def test_variance_population():
    assert variance([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(4.0)


def test_variance_fractional_result():
    assert variance([1, 2]) == pytest.approx(0.25)


def test_variance_of_single_value_is_zero():
    assert variance([3]) == pytest.approx(0.0)


def test_variance_of_empty_raises():
    with pytest.raises(ValueError):
        variance([])


def test_sample_variance_uses_n_minus_one():
    assert sample_variance([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(32 / 7)


def test_sample_variance_two_values():
    assert sample_variance([1, 3]) == pytest.approx(2.0)


def test_sample_variance_single_value_raises():
    with pytest.raises(ValueError):
        sample_variance([5])


def test_stdev_population():
    assert stdev([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(2.0)


def test_sample_stdev():
    assert sample_stdev([1, 2, 3, 4]) == pytest.approx(1.2909944487)


def test_value_range_with_negatives():
    assert value_range([3, -7, 5, 0]) == 12


def test_value_range_of_empty_raises():
    with pytest.raises(ValueError):
        value_range([])


def test_percentile_exact_rank():
    assert percentile([5, 1, 4, 2, 3], 25) == pytest.approx(2.0)


def test_percentile_interpolates_between_ranks():
    assert percentile([10, 20, 30, 40], 25) == pytest.approx(17.5)


def test_percentile_high_interpolation():
    assert percentile([40, 10, 30, 20], 90) == pytest.approx(37.0)


def test_percentile_zero_is_minimum():
    assert percentile([7, 3, 9], 0) == pytest.approx(3.0)


def test_percentile_hundred_is_maximum():
    assert percentile([7, 3, 9], 100) == pytest.approx(9.0)


def test_percentile_single_value():
    assert percentile([42], 63) == pytest.approx(42.0)


def test_percentile_above_hundred_raises():
    with pytest.raises(ValueError):
        percentile([1, 2, 3], 101)


def test_percentile_negative_raises():
    with pytest.raises(ValueError):
        percentile([1, 2, 3], -1)


def test_percentile_of_empty_raises():
    with pytest.raises(ValueError):
        percentile([], 50)


def test_quartiles_even_length():
    assert quartiles([8, 7, 6, 5, 4, 3, 2, 1]) == pytest.approx((2.75, 4.5, 6.25))


def test_quartiles_odd_length():
    assert quartiles([1, 2, 3, 4, 5]) == pytest.approx((2.0, 3.0, 4.0))


def test_iqr():
    assert iqr([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(3.5)


def test_iqr_of_constant_data_is_zero():
    assert iqr([4, 4, 4]) == pytest.approx(0.0)


def test_mean_absolute_deviation():
    assert mean_absolute_deviation([1, 2, 3, 4, 10]) == pytest.approx(2.4)


def test_zscores_population():
    assert zscores([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(
        [-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0]
    )


def test_zscores_sample():
    assert zscores([1, 2, 3], sample=True) == pytest.approx([-1.0, 0.0, 1.0])


def test_zscores_sample_two_values():
    assert zscores([1, 3], sample=True) == pytest.approx([-0.7071067812, 0.7071067812])


def test_zscores_constant_data_raises():
    with pytest.raises(ValueError):
        zscores([3, 3, 3])


def test_zscores_sample_single_value_raises():
    with pytest.raises(ValueError):
        zscores([3], sample=True)


def test_normalize_default_range():
    assert normalize([10, 0, 5]) == pytest.approx([1.0, 0.0, 0.5])


def test_normalize_custom_range():
    assert normalize([2, 4, 6, 10], low=-1.0, high=1.0) == pytest.approx([-1.0, -0.5, 0.0, 1.0])


def test_normalize_constant_data_maps_to_low():
    assert normalize([5, 5], low=2.0, high=3.0) == [2.0, 2.0]


def test_normalize_equal_bounds_raises():
    with pytest.raises(ValueError):
        normalize([1, 2], low=1.0, high=1.0)
