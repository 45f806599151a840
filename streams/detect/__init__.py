"""Online anomaly detection: pure detectors, safety rules and time-to-limit estimates."""

from streams.detect.base import Detector, Score
from streams.detect.univariate import SeasonalZScore

__all__ = ["Detector", "Score", "SeasonalZScore"]
