"""Silent devices: ``DEVICE_OFFLINE`` when a device stops sending for far longer than usual.

Each device's *usual interval* is learned from its own readings in event time: a running
median of the steps between its distinct event times (a multiplicative stochastic median:
each step moves the estimate 5 % towards it, so a lost tick or an outage moves it little).
A device is *silent* once nothing arrived for ``max(offline_factor x usual interval,
offline_min_ms)`` of wall clock; it must have shown ``MIN_STEPS`` steps first (a device
heard only once has no rhythm to miss).

Pure: the caller gives the wall clock. The stage feeds every accepted reading to
:meth:`OfflineWatch.observe` (event time only); the worker's housekeeping tick passes its
clock to :meth:`OfflineWatch.silent`, which stamps the devices heard from since the last
look with that time and returns those silent for too long — each once per silence. The
stage turns a :class:`Silence` into its own alert (key ``{tenant}/{device}/offline``, not the
device's anomaly alert), open until the device sends a reading newer than its last one
(``AlertBook.back_online``): a gateway flushing its buffer after an outage resolves it.

>>> watch = OfflineWatch(DetectionConfig(offline_factor=10, offline_min_ms=60_000))
>>> for i in range(6):
...     watch.observe(("t", "d"), i * 30_000)  # every 30 s of event time
>>> watch.silent(1_000.0, {("t", "d")})  # heard from: stamped at 1,000 s
[]
>>> watch.silent(1_299.0, {("t", "d")})  # 299 s of silence < 10 x 30 s
[]
>>> [(s.last_ts, s.limit_s) for s in watch.silent(1_300.0, {("t", "d")})]
[(150000, 300.0)]
>>> watch.silent(1_900.0, {("t", "d")})  # reported once per silence
[]
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from streams.signals.base import AlertCandidate, DeviceKey
from streams.signals.config import DetectionConfig

__all__ = ["MIN_STEPS", "OFFLINE_GROUP", "OFFLINE_RULE", "OfflineWatch", "Silence"]

OFFLINE_RULE = "DEVICE_OFFLINE"
OFFLINE_GROUP = "offline"
"""The alert group of ``DEVICE_OFFLINE``: its own alert key, apart from the device's anomalies."""

MIN_STEPS = 5
"""Steps between distinct event times a device shows before its silence is judged."""

_STEP = 1.05  # the running median moves by this factor towards each new step


@dataclass(slots=True)
class _Rhythm:
    """What the watch knows of one device (memory only: a restart learns it again)."""

    last_ts: int  # largest event time seen
    interval_ms: float = 0.0  # running median of the steps between distinct event times
    steps: int = 0
    arrived: bool = True  # a reading since the clock was last given
    arrival_s: float | None = None  # wall clock of the last look that found it arrived
    reported: bool = False  # this silence was reported


@dataclass(frozen=True, slots=True)
class Silence:
    """A device silent for longer than it may be."""

    device: DeviceKey
    last_ts: int  # event time of its last reading: the offline alert's first_seen
    silent_s: float  # wall clock since it was last heard from
    interval_ms: float  # its usual interval (event time)
    limit_s: float  # the silence that raises the alert

    def candidate(self) -> AlertCandidate:
        """The ``DEVICE_OFFLINE`` finding (WARNING) for the device's offline alert."""
        return AlertCandidate(
            OFFLINE_RULE,
            "WARNING",
            self.last_ts,
            "UNKNOWN",
            f"{self.device[1]} sent nothing for {self.silent_s:.0f} s "
            f"(usually every {self.interval_ms / 1000:g} s; limit {self.limit_s:.0f} s)",
            {
                "silent_s": f"{self.silent_s:.0f}",
                "usual_interval_s": f"{self.interval_ms / 1000:g}",
                "offline_after_s": f"{self.limit_s:g}",
            },
        )


class OfflineWatch:
    """The rhythm of every device and, given the wall clock, the silent ones."""

    def __init__(self, config: DetectionConfig) -> None:
        self.factor = config.offline_factor
        self.min_s = config.offline_min_ms / 1000.0
        self.enabled = self.factor > 0
        self.rhythm: dict[DeviceKey, _Rhythm] = {}

    def observe(self, device: DeviceKey, ts: int) -> None:
        """A reading of ``device`` at event time ``ts`` arrived."""
        r = self.rhythm.get(device)
        if r is None:
            if not self.enabled:
                return  # off: nothing kept
            self.rhythm[device] = _Rhythm(ts)
            return
        r.arrived = True
        if ts <= r.last_ts:
            return  # the same tick (other sensors), a replay or a late reading
        step = ts - r.last_ts
        r.last_ts = ts
        if r.steps == 0:
            r.interval_ms = float(step)
        elif step > r.interval_ms:
            r.interval_ms = min(r.interval_ms * _STEP, float(step))
        elif step < r.interval_ms:
            r.interval_ms = max(r.interval_ms / _STEP, float(step))
        r.steps += 1

    def interval_ms(self, device: DeviceKey) -> float | None:
        """The learned usual interval of ``device`` (None until it showed ``MIN_STEPS``).

        >>> w = OfflineWatch(DetectionConfig())
        >>> for ts in (0, 60_000, 120_000, 240_000, 300_000, 360_000):  # one tick lost
        ...     w.observe(("t", "d"), ts)
        >>> w.interval_ms(("t", "d"))
        60000.0
        """
        r = self.rhythm.get(device)
        return r.interval_ms if r is not None and r.steps >= MIN_STEPS else None

    def limit_s(self, interval_ms: float) -> float:
        """The silence (wall clock, seconds) that makes a device of this interval offline."""
        return max(self.factor * interval_ms / 1000.0, self.min_s)

    def silent(self, now_s: float, known: Container[DeviceKey]) -> list[Silence]:
        """Stamp the devices heard from since the last call with ``now_s`` (wall clock,
        seconds) and return the ones silent for longer than their limit, each once per
        silence. Devices not in ``known`` (expired, or of partitions given away) are
        forgotten."""
        if not self.enabled:
            return []
        out: list[Silence] = []
        for device, r in list(self.rhythm.items()):
            if device not in known:
                del self.rhythm[device]
            elif r.arrived or r.arrival_s is None:
                r.arrived, r.arrival_s, r.reported = False, now_s, False
            elif not r.reported and r.steps >= MIN_STEPS:
                silent_s = now_s - r.arrival_s
                limit = self.limit_s(r.interval_ms)
                if silent_s >= limit:
                    r.reported = True
                    out.append(Silence(device, r.last_ts, silent_s, r.interval_ms, limit))
        return out
