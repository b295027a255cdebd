"""Operations on ordered series and paired data."""

import math

from .central import _require_data, _total, mean


def _paired(xs, ys, minimum):
    """Return xs and ys as lists after checking they pair up and are long enough."""
    xs = list(xs)
    ys = list(ys)
    if len(xs) != len(ys):
        raise ValueError("xs and ys must have the same length")
    if len(xs) < minimum:
        raise ValueError(f"need at least {minimum} pairs, got {len(xs)}")
    return xs, ys


def _centered_cross(xs, ys):
    """Sum of products of deviations from the respective means."""
    mx = mean(xs)
    my = mean(ys)
    return _total((x - mx) * (y - my) for x, y in zip(xs, ys))


def _bin_index(value, low, width, bins):
    """Bin of a value inside [low, high]; the top edge belongs to the last bin."""
    index = int((value - low) // width)
    if index >= bins:
        return bins - 1
    return index


def moving_average(values, window):
    """Means of each run of `window` consecutive values (length n - window + 1)."""
    data = _require_data(values)
    if window < 1 or window > len(data):
        raise ValueError("window must be between 1 and the number of values")
    running = _total(data[:window])
    result = [running / window]
    for i in range(window, len(data)):
        running += data[i] - data[i - window]
        result.append(running / window)
    return result


def cumulative_sum(values, start=0):
    """Running totals, beginning from `start`."""
    result = []
    running = start
    for value in values:
        running += value
        result.append(running)
    return result


def differences(values, lag=1):
    """Differences values[i] - values[i - lag]; empty when lag >= len(values)."""
    if lag < 1:
        raise ValueError("lag must be at least 1")
    data = list(values)
    return [data[i] - data[i - lag] for i in range(lag, len(data))]


def bin_edges(low, high, bins):
    """The bins + 1 boundaries of equal-width bins spanning [low, high]."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    if low >= high:
        raise ValueError("low must be smaller than high")
    width = (high - low) / bins
    edges = [low + width * i for i in range(bins)]
    edges.append(high)
    return edges


def histogram(values, bins, low=None, high=None):
    """Counts per equal-width bin over [low, high]; values outside are ignored."""
    data = _require_data(values)
    if low is None:
        low = min(data)
    if high is None:
        high = max(data)
    edges = bin_edges(low, high, bins)
    width = edges[1] - edges[0]
    counts = [0] * bins
    for value in data:
        if value < low or value > high:
            continue
        counts[_bin_index(value, low, width, bins)] += 1
    return counts


def covariance(xs, ys, sample=False):
    """Covariance of paired data; divides by n - 1 when `sample` is true."""
    xs, ys = _paired(xs, ys, 2 if sample else 1)
    divisor = len(xs) - 1 if sample else len(xs)
    return _centered_cross(xs, ys) / divisor


def correlation(xs, ys):
    """Pearson correlation coefficient of paired data."""
    xs, ys = _paired(xs, ys, 2)
    sxx = _centered_cross(xs, xs)
    syy = _centered_cross(ys, ys)
    if sxx == 0 or syy == 0:
        raise ValueError("correlation is undefined for constant data")
    return _centered_cross(xs, ys) / math.sqrt(sxx * syy)


def linear_regression(xs, ys):
    """Least-squares fit of ys on xs; returns (slope, intercept)."""
    xs, ys = _paired(xs, ys, 2)
    sxx = _centered_cross(xs, xs)
    if sxx == 0:
        raise ValueError("regression is undefined when all xs are equal")
    slope = _centered_cross(xs, ys) / sxx
    intercept = mean(ys) - slope * mean(xs)
    return slope, intercept


def predict(slope, intercept, x):
    """Value of the line y = slope * x + intercept at x."""
    return slope * x + intercept
