"""The signals of the detection stage, and the one list that registers them.

Each signal is one module (see :mod:`streams.signals.base` for the contract). The stage
runs the enabled ones in the order of :data:`SIGNALS`; the order matters only where a
signal reads the series' baseline before the reading is learned (the likelihood comes
before the per-reading score, which teaches the baseline).
"""

from streams.signals.base import (
    AlertCandidate,
    DeviceState,
    Finding,
    ReadingView,
    ScorePoint,
    SeriesState,
    Signal,
)
from streams.signals.config import DETECTION_SETTINGS, DetectionConfig
from streams.signals.flat_line import FlatLine
from streams.signals.gaps import SequenceGaps
from streams.signals.joint import JointSignal
from streams.signals.likelihood import Likelihood
from streams.signals.limits import SafetyLimits
from streams.signals.profile_drift import ProfileDrift
from streams.signals.score import ReadingScore
from streams.signals.trend import Trend
from streams.signals.window import DeviceWindow

__all__ = [
    "DETECTION_SETTINGS",
    "SIGNALS",
    "AlertCandidate",
    "DetectionConfig",
    "DeviceState",
    "DeviceWindow",
    "Finding",
    "FlatLine",
    "JointSignal",
    "Likelihood",
    "ProfileDrift",
    "ReadingScore",
    "ReadingView",
    "SafetyLimits",
    "ScorePoint",
    "SequenceGaps",
    "SeriesState",
    "Signal",
    "Trend",
]

SIGNALS: tuple[type[Signal], ...] = (
    SequenceGaps,
    DeviceWindow,
    JointSignal,
    SafetyLimits,
    Likelihood,
    ReadingScore,
    FlatLine,
    Trend,
    ProfileDrift,
)
"""Every signal the stage runs (when ``enabled`` by the config), in order."""
