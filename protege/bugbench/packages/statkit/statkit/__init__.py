"""statkit: descriptive statistics without the standard `statistics` module."""

from .central import (
    geometric_mean, harmonic_mean, mean, median, midrange, mode, modes, trimmed_mean,
    weighted_mean,
)
from .series import (
    bin_edges, correlation, covariance, cumulative_sum, differences, histogram,
    linear_regression, moving_average, predict,
)
from .spread import (
    iqr, mean_absolute_deviation, normalize, percentile, quartiles, sample_stdev,
    sample_variance, stdev, value_range, variance, zscores,
)

__all__ = [
    "bin_edges", "correlation", "covariance", "cumulative_sum", "differences",
    "geometric_mean", "harmonic_mean", "histogram", "iqr", "linear_regression", "mean",
    "mean_absolute_deviation", "median", "midrange", "mode", "modes", "moving_average",
    "normalize", "percentile", "predict", "quartiles", "sample_stdev", "sample_variance",
    "stdev", "trimmed_mean", "value_range", "variance", "weighted_mean", "zscores",
]
