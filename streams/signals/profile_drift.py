"""Drift towards a safety limit: a CUSUM of the series' departure from its daily profile.

A slow fault (a wearing bearing, an overloaded transformer, a leaking tyre) moves a limited
quantity towards its safety limit over hours. The per-reading score misses it: a ramp is
followed by the series' recent level, against which every reading looks usual. This signal
compares each ``trend_bucket_ms`` bucket mean with the series' learned daily profile instead
(:meth:`~streams.detect.univariate.SeasonalZScore.deviation`: the distance from the profile
at that time of day, in the spread usual at that hour), signed towards the limit, and sums
the excess over ``profile_drift_slack`` in a one-sided CUSUM (each bucket clipped at
``profile_drift_clip``, so a single spike cannot raise it alone):

    S = max(0, S + min(d, clip) - slack)

``S >= profile_drift_threshold`` is a ``drift:{CAPABILITY}`` WARNING observation, with the
departure and the slope of the last buckets, on every bucket while it lasts. A departure
away from the limit (a cooler bearing, a fuller tyre) is not evidence; a daily cycle that
repeats yesterday's is in the profile and sums nothing. Only series whose capability has a
safety limit (the one :func:`~streams.signals.trend.trend_limit` extrapolates to) are judged,
and never those of a ``GENERIC`` device (replayed data of an unknown kind, e.g. NAB) nor of
a device with an operating state (``OPERATING_STATE``: a battery pack's cells warm with the
charge its schedule commands, not with the time of day, so yesterday's profile is no
reference; measured: every false drift alert of the tuning fleets was a healthy pack's
cell temperature).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from streams.detect.rules import OPERATING_STATE
from streams.detect.state import State, read_float, read_int
from streams.signals.base import (
    NO_FINDINGS,
    AlertCandidate,
    DeviceState,
    Finding,
    ReadingView,
    SeriesState,
    Signal,
)
from streams.signals.trend import trend_limit

if TYPE_CHECKING:
    from streams.signals.config import DetectionConfig

__all__ = ["ProfileDrift", "ProfileDriftState", "cusum_step"]

_NOT_JUDGED = frozenset({"GENERIC", *(device_type for device_type, _ in OPERATING_STATE)})


def cusum_step(total: float, deviation: float, *, slack: float, clip: float) -> float:
    """One step of the one-sided CUSUM: ``max(0, total + min(deviation, clip) - slack)``.

    >>> cusum_step(0.0, 3.0, slack=1.0, clip=4.0)
    2.0
    >>> cusum_step(2.0, 50.0, slack=1.0, clip=4.0)  # one spike adds at most clip - slack
    5.0
    >>> cusum_step(2.0, -3.0, slack=1.0, clip=4.0)  # away from the limit: back to 0
    0.0
    """
    return max(0.0, total + min(deviation, clip) - slack)


@dataclass
class ProfileDriftState:
    """One limited series: the bucket being filled and the CUSUM of past buckets."""

    sign: float  # +1: the limit is above (departures upwards count), -1: below
    bucket_start: int = -1
    bucket_sum: float = 0.0
    bucket_n: int = 0
    total: float = 0.0  # the CUSUM
    last: float = 0.0  # the last bucket's departure (signed towards the limit)

    def to_state(self) -> State:
        return {
            "sign": self.sign,
            "bucket_start": self.bucket_start,
            "bucket_sum": self.bucket_sum,
            "bucket_n": self.bucket_n,
            "total": self.total,
            "last": self.last,
        }

    @classmethod
    def from_state(cls, d: State) -> ProfileDriftState:
        sign = read_float(d, "sign")
        if sign not in (1.0, -1.0):
            msg = f"sign: expected 1 or -1, got {sign!r}"
            raise ValueError(msg)
        return cls(
            sign,
            read_int(d, "bucket_start"),
            read_float(d, "bucket_sum"),
            read_int(d, "bucket_n"),
            read_float(d, "total"),
            read_float(d, "last"),
        )


class ProfileDrift(Signal):
    """A limited series departing from its daily profile towards its limit, bucket after
    bucket (CUSUM)."""

    name: ClassVar[str] = "profile_drift"
    series_state_type = ProfileDriftState

    @classmethod
    def enabled(cls, config: DetectionConfig) -> bool:
        return config.profile_drift_threshold > 0  # 0: off

    def new_series_state(self, device_type: str, capability: str) -> ProfileDriftState | None:
        if device_type in _NOT_JUDGED:
            return None
        limit = trend_limit(device_type, capability)
        if limit is None:
            return None
        return ProfileDriftState(1.0 if limit.direction == "above" else -1.0)

    def on_series(
        self, reading: ReadingView, dev: DeviceState, ser: SeriesState, *, learn: bool
    ) -> Sequence[Finding]:
        st: ProfileDriftState | None = ser.signals.get(self.key)
        if st is None or not learn:
            return NO_FINDINGS
        cfg = self.config
        ts, value = reading.ts, reading.value
        size = cfg.trend_bucket_ms
        bucket = ts - ts % size
        if st.bucket_start == bucket or st.bucket_start < 0:
            st.bucket_start = bucket
            st.bucket_sum += value
            st.bucket_n += 1
            return NO_FINDINGS
        mean = st.bucket_sum / st.bucket_n
        middle = st.bucket_start + size // 2
        st.bucket_start, st.bucket_sum, st.bucket_n = bucket, value, 1
        det = ser.detector
        if not det.is_warm:
            return NO_FINDINGS
        d = st.sign * det.deviation(mean, middle)
        st.last = d
        st.total = cusum_step(
            st.total, d, slack=cfg.profile_drift_slack, clip=cfg.profile_drift_clip
        )
        if st.total < cfg.profile_drift_threshold:
            return NO_FINDINGS
        cap = ser.capability
        residual = det.residual(mean, middle)
        side = "above" if st.sign > 0 else "below"
        return [
            AlertCandidate(
                f"drift:{cap}",
                "WARNING",
                ts,
                cap,
                f"{cap} drifting towards its limit: {mean:g} is {residual:+.3g} from the usual "
                f"level at this hour ({d:.1f} usual spreads {side} it; CUSUM {st.total:.1f})",
                {"drift_cusum": f"{st.total:.1f}", "drift_capability": cap},
            )
        ]
