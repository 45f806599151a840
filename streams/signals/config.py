"""The knobs of the detection stage, and the one place they are built from settings.

:class:`DetectionConfig` holds every parameter of the signals; a few of them are settings
(``ENVIROSTREAM_DETECTOR_*`` …). :func:`detection_config_from_settings` and
:func:`alert_policy_from_settings` are the only code that reads those settings: the worker,
``bench detection`` and ``bench nab`` all build their stage through them, and
:data:`DETECTION_SETTINGS` names the settings they read (so a bench that starts a private
worker copies exactly these).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from streams.alerts import AlertPolicy

if TYPE_CHECKING:
    from core.settings import Settings

__all__ = [
    "DETECTION_SETTINGS",
    "LIKELIHOOD_SCOPES",
    "WINDOW_MODELS",
    "DetectionConfig",
    "alert_policy_from_settings",
    "detection_config_from_settings",
]

LIKELIHOOD_SCOPES = ("off", "generic", "all")
"""Which series the anomaly likelihood judges: none, the ``GENERIC`` ones (replayed data of
an unknown kind, e.g. NAB), or every learned series."""

WINDOW_MODELS = ("mahalanobis", "hst")
"""The device window models (``DetectionConfig.window_model``, see
:func:`streams.signals.window.new_window_model`)."""


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """The knobs of the detection stage (settings ``ENVIROSTREAM_DETECTOR_*``).

    >>> DetectionConfig(threshold=4.5).threshold
    4.5
    >>> DetectionConfig(persistence=0)
    Traceback (most recent call last):
    ...
    ValueError: DetectionConfig.persistence is out of range: 0
    """

    warmup: int = 300
    threshold: float = 6.0
    persistence: int = 3
    persistence_window: int = 10
    trend_bucket_ms: int = 300_000
    trend_points: int = 24
    horizon_ms: int = 6 * 3_600_000
    trend_confirm: int = 3
    trend_min_deviation: float = 3.0
    stuck_after: int = 30
    gap_share: float = 0.2
    score_sample_every: int = 0
    window: bool = True
    window_warmup: int = 144
    window_threshold: float = 8.0
    window_persistence: int = 2
    window_persistence_window: int = 3
    window_fading: float = 0.01
    window_shrink: float = 0.01
    window_clip: float = 4.0
    window_min_learned: int = 60
    window_settle: int = 3
    window_model: str = "mahalanobis"  # "mahalanobis" or "hst": what scores anomaly:window
    window_hst_threshold: float = 0.956  # healthy p99.9 (calibration fleet, seed 3)
    window_hst_trees: int = 50
    window_hst_height: int = 8
    window_hst_size: int = 288  # windows per HalfSpaceTrees reference window (a day)
    drift_slack: float = 2.0
    drift_threshold: float = 30.0
    likelihood: str = "generic"
    likelihood_threshold: float = 4.0
    likelihood_short: int = 10
    likelihood_warmup: int = 100  # scores it learns before judging (chosen by bench nab-cv)
    likelihood_history: int = 8_640
    offline_factor: float = 10.0  # DEVICE_OFFLINE after this many usual intervals; 0 = off
    offline_min_ms: int = 60_000  # ... and at least this long (wall clock)
    quiet_intervals: int = 12  # an alert's quiet period is at least this many usual intervals
    drift_accept_ms: int = 3 * 86_400_000  # a drift latched this long is the new normal; 0 = never
    joint: bool = False  # the joint state of a device's signals per instant (Hotelling T²)
    joint_warmup: int = 120  # rows
    joint_threshold: float = 1.0  # normalised T² (a healthy row is about N(0, 1))
    joint_fading: float = 0.001
    joint_shrink: float = 0.01
    joint_clip: float = 4.0
    joint_persistence: int = 5
    joint_persistence_window: int = 10
    joint_smooth: int = 10  # rows: the row is an exponentially weighted mean over about these
    profile_drift_slack: float = 1.0  # usual spreads from the daily profile that sum nothing
    profile_drift_clip: float = 4.0  # the most one bucket adds (before the slack)
    profile_drift_threshold: float = 12.0  # CUSUM that raises drift:{CAPABILITY}; 0 = off

    def __post_init__(self) -> None:
        checks = {
            "warmup": self.warmup >= 0,
            "threshold": math.isfinite(self.threshold) and self.threshold > 0,
            "persistence": 1 <= self.persistence <= self.persistence_window,
            "persistence_window": 1 <= self.persistence_window <= 64,
            "trend_bucket_ms": self.trend_bucket_ms > 0,
            "trend_points": self.trend_points >= 4,
            "horizon_ms": self.horizon_ms > 0,
            "trend_confirm": self.trend_confirm >= 1,
            "trend_min_deviation": self.trend_min_deviation >= 0,
            "stuck_after": self.stuck_after >= 2,
            "gap_share": 0 < self.gap_share <= 1,
            "score_sample_every": self.score_sample_every >= 0,
            "window_warmup": self.window_warmup >= 0,
            "window_threshold": math.isfinite(self.window_threshold) and self.window_threshold > 0,
            "window_persistence": 1 <= self.window_persistence <= self.window_persistence_window,
            "window_persistence_window": 1 <= self.window_persistence_window <= 64,
            "window_fading": 0 < self.window_fading < 1,
            "window_shrink": 0 <= self.window_shrink < 1,
            "window_clip": self.window_clip > 0,
            "window_min_learned": self.window_min_learned >= 2,
            "window_settle": self.window_settle >= 0,
            "window_model": self.window_model in WINDOW_MODELS,
            "window_hst_threshold": 0 < self.window_hst_threshold < 1,
            "window_hst_trees": 1 <= self.window_hst_trees <= 200,
            "window_hst_height": 1 <= self.window_hst_height <= 12,
            "window_hst_size": self.window_hst_size >= 2,
            "drift_slack": self.drift_slack >= 0,
            "drift_threshold": math.isfinite(self.drift_threshold) and self.drift_threshold > 0,
            "likelihood": self.likelihood in LIKELIHOOD_SCOPES,
            "likelihood_threshold": math.isfinite(self.likelihood_threshold)
            and self.likelihood_threshold > 0,
            "likelihood_short": self.likelihood_short >= 1,
            "likelihood_warmup": self.likelihood_warmup >= 0,
            "likelihood_history": self.likelihood_history >= 2,
            "offline_factor": 0 <= self.offline_factor < math.inf,
            "offline_min_ms": self.offline_min_ms >= 0,
            "quiet_intervals": 0 <= self.quiet_intervals <= 10_000,
            "drift_accept_ms": self.drift_accept_ms >= 0,
            "joint_warmup": self.joint_warmup >= 0,
            "joint_threshold": math.isfinite(self.joint_threshold) and self.joint_threshold > 0,
            "joint_fading": 0 < self.joint_fading < 1,
            "joint_shrink": 0 <= self.joint_shrink < 1,
            "joint_clip": self.joint_clip > 0,
            "joint_persistence": 1 <= self.joint_persistence <= self.joint_persistence_window,
            "joint_persistence_window": 1 <= self.joint_persistence_window <= 64,
            "joint_smooth": self.joint_smooth >= 1,
            "profile_drift_slack": math.isfinite(self.profile_drift_slack)
            and self.profile_drift_slack >= 0,
            "profile_drift_clip": math.isfinite(self.profile_drift_clip)
            and self.profile_drift_clip > self.profile_drift_slack,
            "profile_drift_threshold": math.isfinite(self.profile_drift_threshold)
            and self.profile_drift_threshold >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            value = getattr(self, bad[0])
            msg = f"DetectionConfig.{bad[0]} is out of range: {value!r}"
            raise ValueError(msg)

    def with_overrides(self, **overrides: Any) -> DetectionConfig:
        """A copy with ``overrides`` (validated again); ``None`` values are ignored.

        >>> DetectionConfig().with_overrides(warmup=5, threshold=None).warmup
        5
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(self, **given) if given else self


def _seconds_to_ms(seconds: float) -> int:
    return round(seconds * 1000)


# config field <- (setting, conversion): the single copy of what the stage reads from settings
_FROM_SETTINGS: dict[str, tuple[str, Any]] = {
    "warmup": ("detector_warmup", None),
    "threshold": ("detector_threshold", None),
    "persistence": ("detector_persistence", None),
    "likelihood": ("detector_likelihood", None),
    "likelihood_threshold": ("detector_likelihood_threshold", None),
    "horizon_ms": ("predict_horizon_seconds", _seconds_to_ms),
    "score_sample_every": ("anomaly_sample_every", None),
    "window_model": ("detector_window_model", None),
    "offline_factor": ("device_offline_factor", None),
    "offline_min_ms": ("device_offline_min_seconds", _seconds_to_ms),
    "quiet_intervals": ("alert_quiet_intervals", None),
    "joint": ("detector_joint", None),
    "joint_threshold": ("detector_joint_threshold", None),
}
_POLICY_SETTINGS = (
    "alert_quiet_period_seconds",
    "alert_repeat_interval_seconds",
    "alert_reopen_seconds",
)

DETECTION_SETTINGS: tuple[str, ...] = (
    *(setting for setting, _ in _FROM_SETTINGS.values()),
    *_POLICY_SETTINGS,
)
"""The names of the ``Settings`` fields the detection stage is built from."""


def detection_config_from_settings(settings: Settings, **overrides: Any) -> DetectionConfig:
    """The :class:`DetectionConfig` of ``settings``; ``overrides`` set config fields directly
    (a benchmark's explicit choices), on top of what the settings say."""
    values: dict[str, Any] = {}
    for name, (setting, convert) in _FROM_SETTINGS.items():
        value = getattr(settings, setting)
        values[name] = convert(value) if convert is not None else value
    return DetectionConfig(**{**values, **overrides})


def alert_policy_from_settings(settings: Settings) -> AlertPolicy:
    """The alert deduplication policy of ``settings`` (quiet period, repeat interval,
    reopen window)."""
    return AlertPolicy(
        quiet_period_ms=_seconds_to_ms(settings.alert_quiet_period_seconds),
        repeat_interval_ms=_seconds_to_ms(settings.alert_repeat_interval_seconds),
        reopen_window_ms=_seconds_to_ms(settings.alert_reopen_seconds),
    )
