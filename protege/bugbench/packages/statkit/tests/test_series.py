import pytest

from statkit import (
    bin_edges,
    correlation,
    covariance,
    cumulative_sum,
    differences,
    histogram,
    linear_regression,
    moving_average,
    predict,
)


def test_moving_average_window_two():
    assert moving_average([1, 2, 3, 4, 5], 2) == pytest.approx([1.5, 2.5, 3.5, 4.5])


def test_moving_average_window_three():
    assert moving_average([3, 0, 6, 9, 0], 3) == pytest.approx([3.0, 5.0, 5.0])


def test_moving_average_window_equal_to_length():
    assert moving_average([2, 4, 9], 3) == pytest.approx([5.0])


def test_moving_average_window_one_returns_values():
    assert moving_average([4, -1, 7], 1) == pytest.approx([4.0, -1.0, 7.0])


def test_moving_average_window_zero_raises():
    with pytest.raises(ValueError):
        moving_average([1, 2, 3], 0)


def test_moving_average_window_too_large_raises():
    with pytest.raises(ValueError):
        moving_average([1, 2, 3], 4)


def test_cumulative_sum():
    assert cumulative_sum([1, 2, 3, -4]) == [1, 3, 6, 2]


def test_cumulative_sum_with_start():
    assert cumulative_sum([1, 2, 3], start=10) == [11, 13, 16]


def test_cumulative_sum_of_empty():
    assert cumulative_sum([]) == []


def test_differences_lag_one():
    assert differences([1, 4, 9, 16]) == [3, 5, 7]


def test_differences_lag_two():
    assert differences([1, 4, 9, 16, 25], lag=2) == [8, 12, 16]


def test_differences_lag_one_less_than_length():
    assert differences([1, 4, 9, 16], lag=3) == [15]


def test_differences_lag_equal_to_length_is_empty():
    assert differences([1, 4, 9], lag=3) == []


def test_differences_lag_zero_raises():
    with pytest.raises(ValueError):
        differences([1, 2, 3], lag=0)


def test_bin_edges_four_bins():
    assert bin_edges(0, 10, 4) == pytest.approx([0.0, 2.5, 5.0, 7.5, 10.0])


def test_bin_edges_single_bin():
    assert bin_edges(-2, 3, 1) == pytest.approx([-2.0, 3.0])


def test_bin_edges_zero_bins_raises():
    with pytest.raises(ValueError):
        bin_edges(0, 10, 0)


def test_bin_edges_empty_interval_raises():
    with pytest.raises(ValueError):
        bin_edges(5, 5, 3)


def test_histogram_explicit_range():
    assert histogram([0, 1, 1, 2, 9, 10], 5, low=0, high=10) == [3, 1, 0, 0, 2]


def test_histogram_inner_edge_goes_to_upper_bin():
    assert histogram([4.9, 5.0], 2, low=0, high=10) == [1, 1]


def test_histogram_ignores_values_outside_range():
    assert histogram([-1, 0, 5, 10, 11], 2, low=0, high=10) == [1, 2]


def test_histogram_default_range_from_data():
    assert histogram([2, 4, 6], 2) == [1, 2]


def test_histogram_constant_data_raises():
    with pytest.raises(ValueError):
        histogram([3, 3], 2)


def test_covariance_population():
    assert covariance([1, 2, 3], [1, 2, 3]) == pytest.approx(2 / 3)


def test_covariance_sample():
    assert covariance([1, 2, 3], [1, 2, 3], sample=True) == pytest.approx(1.0)


def test_covariance_single_pair_is_zero():
    assert covariance([5], [7]) == pytest.approx(0.0)


def test_covariance_sample_two_pairs():
    assert covariance([1, 3], [2, 6], sample=True) == pytest.approx(4.0)


def test_covariance_negative():
    assert covariance([1, 2, 3], [6, 4, 2]) == pytest.approx(-4 / 3)


def test_covariance_length_mismatch_raises():
    with pytest.raises(ValueError):
        covariance([1, 2, 3], [1, 2])


def test_covariance_sample_single_pair_raises():
    with pytest.raises(ValueError):
        covariance([1], [2], sample=True)


def test_correlation_partial():
    assert correlation([1, 2, 3, 4], [2, 1, 4, 3]) == pytest.approx(0.6)


def test_correlation_two_pairs():
    assert correlation([1, 2], [5, 3]) == pytest.approx(-1.0)


def test_correlation_perfect_positive():
    assert correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)


def test_correlation_perfect_negative():
    assert correlation([1, 2, 3], [5, 3, 1]) == pytest.approx(-1.0)


def test_correlation_constant_ys_raises():
    with pytest.raises(ValueError):
        correlation([1, 2, 3], [4, 4, 4])


def test_correlation_constant_xs_raises():
    with pytest.raises(ValueError):
        correlation([2, 2, 2], [1, 2, 3])


def test_correlation_single_pair_raises():
    with pytest.raises(ValueError):
        correlation([1], [1])


def test_linear_regression_exact_line():
    assert linear_regression([1, 2, 3], [3, 5, 7]) == pytest.approx((2.0, 1.0))


def test_linear_regression_two_points():
    assert linear_regression([0, 2], [1, 5]) == pytest.approx((2.0, 1.0))


def test_linear_regression_noisy_data():
    assert linear_regression([0, 1, 2, 3], [1, 3, 2, 5]) == pytest.approx((1.1, 1.1))


def test_linear_regression_negative_slope():
    assert linear_regression([0, 2, 4], [10, 6, 2]) == pytest.approx((-2.0, 10.0))


def test_linear_regression_constant_xs_raises():
    with pytest.raises(ValueError):
        linear_regression([1, 1, 1], [1, 2, 3])


def test_predict():
    assert predict(2.0, 1.0, 3.0) == pytest.approx(7.0)


def test_predict_negative_slope():
    assert predict(-0.5, 4.0, 2.0) == pytest.approx(3.0)
