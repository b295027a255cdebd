"""Measures of central tendency."""

import math


def _require_data(values, minimum=1):
    """Return values as a list, raising ValueError if it is too short."""
    data = list(values)
    if len(data) < minimum:
        raise ValueError(f"need at least {minimum} data point(s), got {len(data)}")
    return data


def _total(values):
    total = 0.0
    for value in values:
        total += value
    return total


def _middle_of_sorted(data):
    """Median of an already sorted, non-empty list."""
    n = len(data)
    mid = n // 2
    if n % 2 == 1:
        return data[mid]
    return (data[mid - 1] + data[mid]) / 2


def _frequencies(data):
    counts = {}
    for value in data:
        counts[value] = counts.get(value, 0) + 1
    return counts


def mean(values):
    """Arithmetic mean of a non-empty sequence."""
    data = _require_data(values)
    return _total(data) / len(data)


def weighted_mean(values, weights):
    """Mean of values weighted by the matching non-negative weights."""
    data = _require_data(values)
    weights = list(weights)
    if len(weights) != len(data):
        raise ValueError("values and weights must have the same length")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    total_weight = _total(weights)
    if total_weight == 0:
        raise ValueError("weights must not sum to zero")
    weighted = _total(v * w for v, w in zip(data, weights))
    return weighted / total_weight


def median(values):
    """Middle value; the mean of the two middle values for even-sized data."""
    data = _require_data(values)
    return _middle_of_sorted(sorted(data))


def modes(values):
    """All most-frequent values, sorted ascending."""
    data = _require_data(values)
    counts = _frequencies(data)
    best = max(counts.values())
    return sorted(value for value, count in counts.items() if count == best)


def mode(values):
    """Most frequent value; ties are broken by taking the smallest."""
    return modes(values)[0]


def trimmed_mean(values, proportion):
    """Mean after dropping `proportion` of the data from each end."""
    data = _require_data(values)
    if proportion < 0 or proportion >= 0.5:
        raise ValueError("proportion must be in [0, 0.5)")
    cut = int(len(data) * proportion)
    kept = sorted(data)[cut:len(data) - cut]
    return _total(kept) / len(kept)


def geometric_mean(values):
    """n-th root of the product of strictly positive values."""
    data = _require_data(values)
    if any(v <= 0 for v in data):
        raise ValueError("geometric mean requires positive values")
    log_sum = _total(math.log(v) for v in data)
    return math.exp(log_sum / len(data))


def harmonic_mean(values):
    """Reciprocal of the mean of reciprocals of strictly positive values."""
    data = _require_data(values)
    if any(v <= 0 for v in data):
        raise ValueError("harmonic mean requires positive values")
    return len(data) / _total(1 / v for v in data)


def midrange(values):
    """Average of the smallest and largest value."""
    data = _require_data(values)
    return (min(data) + max(data)) / 2
