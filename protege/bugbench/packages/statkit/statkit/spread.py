"""Measures of dispersion and position."""

import math

from .central import _middle_of_sorted, _require_data, _total, mean


def _sum_squared_deviations(data, center):
    return _total((v - center) ** 2 for v in data)


def _interpolate(low, high, fraction):
    """Linear interpolation between low and high at the given fraction."""
    return low + (high - low) * fraction


def _percentile_of_sorted(data, p):
    """Percentile (0-100) of sorted data using linear interpolation between ranks."""
    if p < 0 or p > 100:
        raise ValueError("percentile must be between 0 and 100")
    rank = (len(data) - 1) * p / 100
    lower = int(math.floor(rank))
    upper = min(lower + 1, len(data) - 1)
    return _interpolate(data[lower], data[upper], rank - lower)


def variance(values):
    """Population variance (divides by n)."""
    data = _require_data(values)
    return _sum_squared_deviations(data, mean(data)) / len(data)


def sample_variance(values):
    """Sample variance with Bessel's correction (divides by n - 1)."""
    data = _require_data(values, 2)
    return _sum_squared_deviations(data, mean(data)) / (len(data) - 1)


def stdev(values):
    """Population standard deviation."""
    return math.sqrt(variance(values))


def sample_stdev(values):
    """Sample standard deviation."""
    return math.sqrt(sample_variance(values))


def value_range(values):
    """Difference between the largest and smallest value."""
    data = _require_data(values)
    return max(data) - min(data)


def percentile(values, p):
    """p-th percentile (0-100) with linear interpolation between closest ranks."""
    data = _require_data(values)
    return _percentile_of_sorted(sorted(data), p)


def quartiles(values):
    """Tuple (Q1, median, Q3) computed with `percentile` at 25, 50 and 75."""
    data = sorted(_require_data(values))
    return (
        _percentile_of_sorted(data, 25),
        _middle_of_sorted(data),
        _percentile_of_sorted(data, 75),
    )


def iqr(values):
    """Interquartile range Q3 - Q1."""
    q1, _, q3 = quartiles(values)
    return q3 - q1


def mean_absolute_deviation(values):
    """Average absolute distance from the mean."""
    data = _require_data(values)
    center = mean(data)
    return _total(abs(v - center) for v in data) / len(data)


def zscores(values, sample=False):
    """Standard scores of each value; uses the sample stdev when `sample` is true."""
    data = _require_data(values)
    spread = sample_stdev(data) if sample else stdev(data)
    if spread == 0:
        raise ValueError("z-scores are undefined for constant data")
    center = mean(data)
    return [(v - center) / spread for v in data]


def normalize(values, low=0.0, high=1.0):
    """Min-max rescale values into [low, high]; constant data maps to low."""
    data = _require_data(values)
    if low >= high:
        raise ValueError("low must be smaller than high")
    smallest = min(data)
    width = max(data) - smallest
    if width == 0:
        return [low for _ in data]
    return [_interpolate(low, high, (v - smallest) / width) for v in data]
