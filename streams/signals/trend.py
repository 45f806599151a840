"""Predicted failure: a series with a safety limit, extrapolated to the limit.

The series' bucket means (``trend_bucket_ms`` of event time) feed a Theil-Sen time-to-limit
estimate (:class:`~streams.detect.predictive.TimeToLimit`); a crossing predicted inside
``horizon_ms`` on ``trend_confirm`` buckets in a row is a ``PREDICTED_FAILURE`` observation
carrying the estimated time to failure. A level usual for the hour (in the series' daily
profile) is not extrapolated.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from streams.detect.predictive import TimeToLimit
from streams.detect.rules import SAFETY_LIMITS, Limit
from streams.detect.state import State, read_dict, read_float, read_int
from streams.signals.base import (
    NO_FINDINGS,
    AlertCandidate,
    DeviceState,
    Finding,
    ReadingView,
    SeriesState,
    Signal,
)

__all__ = ["Trend", "TrendState", "trend_limit"]

_NOT_PREDICTED = frozenset({"CELL_VOLTAGE", "VOLTAGE", "BATTERY_VOLTAGE"})
"""Limited capabilities whose normal operation ramps towards the limit and stops short of it
(a charger holds a cell at its end-of-charge voltage): a linear trend would cry wolf at every
charge, so only their limits apply."""


@functools.cache  # called for every new series; the limits are constants
def trend_limit(device_type: str, capability: str) -> Limit | None:
    """The first-reached limit of a capability (the least severe, e.g. WARNING), if any.

    >>> trend_limit("BATTERY_PACK", "CELL_VOLTAGE") is None  # ramps to its limit normally
    True
    """
    if capability in _NOT_PREDICTED:
        return None
    limits = SAFETY_LIMITS.get((device_type, capability), ()) + SAFETY_LIMITS.get(
        ("*", capability), ()
    )
    if not limits:
        return None
    above = [lim for lim in limits if lim.direction == "above"]
    if above:
        return min(above, key=lambda lim: lim.bound)
    return max(limits, key=lambda lim: lim.bound)


@dataclass
class TrendState:
    """The time-to-limit model of one series and the bucket being filled."""

    model: TimeToLimit
    bucket_start: int = -1
    bucket_sum: float = 0.0
    bucket_n: int = 0
    hits: int = 0  # buckets in a row predicting a crossing inside the horizon

    def to_state(self) -> State:
        return {
            "model": self.model.to_state(),
            "bucket_start": self.bucket_start,
            "bucket_sum": self.bucket_sum,
            "bucket_n": self.bucket_n,
            "hits": self.hits,
        }

    @classmethod
    def from_state(cls, d: State) -> TrendState:
        return cls(
            TimeToLimit.from_state(read_dict(d, "model")),
            read_int(d, "bucket_start"),
            read_float(d, "bucket_sum"),
            read_int(d, "bucket_n"),
            read_int(d, "hits"),
        )


class Trend(Signal):
    """Time to the safety limit, from the trend of the series' bucket means."""

    name: ClassVar[str] = "trend"
    series_state_type = TrendState

    def new_series_state(self, device_type: str, capability: str) -> TrendState | None:
        limit = trend_limit(device_type, capability)
        if limit is None:
            return None
        cfg = self.config
        return TrendState(
            TimeToLimit(
                limit=limit.bound,
                direction=limit.direction,
                horizon_s=cfg.horizon_ms / 1000.0,
                size=cfg.trend_points,
                warmup=cfg.trend_points // 2,
            )
        )

    def on_series(
        self, reading: ReadingView, dev: DeviceState, ser: SeriesState, *, learn: bool
    ) -> Sequence[Finding]:
        st: TrendState | None = ser.signals.get(self.key)
        if st is None or not learn:
            return NO_FINDINGS
        cfg = self.config
        ts, value = reading.ts, reading.value
        trend = st.model
        bucket = ts - ts % cfg.trend_bucket_ms
        if st.bucket_start == bucket or st.bucket_start < 0:
            st.bucket_start = bucket
            st.bucket_sum += value
            st.bucket_n += 1
            return NO_FINDINGS
        mean = st.bucket_sum / st.bucket_n
        trend.learn_one(mean, st.bucket_start + cfg.trend_bucket_ms // 2)
        st.bucket_start, st.bucket_sum, st.bucket_n = bucket, value, 1
        if not (trend.is_warm and ser.detector.is_warm):
            return NO_FINDINGS
        eta = trend.time_to_limit_s(bucket)
        # a daily heating that stops short of the limit (a charge, a load peak) is in the
        # daily profile: only a level unusual for the hour is extrapolated
        usual = abs(ser.detector.deviation(mean, bucket)) < cfg.trend_min_deviation
        if eta is None or eta <= 0 or eta * 1000 > cfg.horizon_ms:
            st.hits = 0
            return NO_FINDINGS
        if usual:
            return []  # not evidence either way
        st.hits += 1
        if st.hits < cfg.trend_confirm:
            return NO_FINDINGS
        cap = ser.capability
        side = "above" if trend.direction == "above" else "below"
        return [
            AlertCandidate(
                "PREDICTED_FAILURE",
                "WARNING",
                ts,
                cap,
                f"{cap} predicted {side} {trend.limit:g} in {eta / 3600:.1f} h (now {mean:g})",
                {"time_to_failure_s": f"{eta:.0f}", "predicted_capability": cap},
            )
        ]
