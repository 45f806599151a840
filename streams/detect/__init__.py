"""Online anomaly detection: pure detectors, safety rules and time-to-limit estimates."""

from streams.detect.base import Detector, Score
from streams.detect.multivariate import WindowHST, WindowMahalanobis, window_features
from streams.detect.predictive import TimeToLimit, theil_sen
from streams.detect.rules import assess_reading, check_limits, in_physical_range
from streams.detect.univariate import SeasonalZScore

__all__ = [
    "Detector",
    "Score",
    "SeasonalZScore",
    "TimeToLimit",
    "WindowHST",
    "WindowMahalanobis",
    "assess_reading",
    "check_limits",
    "in_physical_range",
    "theil_sen",
    "window_features",
]
