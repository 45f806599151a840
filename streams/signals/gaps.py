"""Sequence gaps: a device missing ticks (gaps in ``sequence``, one number per tick).

The share of missing ticks is an exponentially weighted mean over about the last 30 ticks;
once it reaches ``gap_share`` (after a warm-up of 60 ticks), a ``device:gaps`` WARNING.

A sequence that goes *backwards* is never a gap:

* **restart**: it drops to near 0 (at most ``RESTART_BELOW``) while the device's event time
  moves on — the device rebooted and its counter started again. Counting continues from the
  new number; the restart is an ``AnomalyScore`` record (detector ``sequence_restart``,
  ``value`` the new sequence, ``score`` the one before; flagged, so counted in
  ``envirostream_anomalies_total{detector="sequence_restart"}``), never an alert;
* **replay**: its event time is not newer than the device's last (a worker replaying input
  after a restart, from offsets behind the checkpointed state): ignored;
* otherwise (an out-of-order sequence) ignored as well.

After a restore from a checkpoint (which may be *behind* the replayed offsets: the ticks in
between were seen by the worker that died), the first step forward counts at most one
missing tick: a checkpoint's age is not a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from streams.detect.state import State, StateError, read_float, read_int, read_value
from streams.signals.base import (
    NO_FINDINGS,
    AlertCandidate,
    DeviceState,
    Finding,
    ReadingView,
    ScorePoint,
    Signal,
)

__all__ = ["RESTART_BELOW", "RESTART_DETECTOR", "GapState", "SequenceGaps"]

_ALPHA = 1.0 / 30.0  # weight of one tick in the share of missing ticks
_MAX_GAP = 200  # ticks counted at most per gap
RESTART_BELOW = 100
"""A backward sequence at most this (with event time moving on) is a restarted counter."""
RESTART_DETECTOR = "sequence_restart"


@dataclass
class GapState:
    """The sequence numbers of one device."""

    last_seq: int | None = None
    ticks: int = 0
    missing: float = 0.0  # exponentially weighted share of missing ticks
    last_ts: int | None = None  # event time of the reading that set last_seq
    restarts: int = 0  # counters seen restarting (reboots)
    # not persisted: True in a new or restored state (its next step forward counts at most
    # one missing tick)
    rebase: bool = field(default=True, compare=False)

    def to_state(self) -> State:
        return {
            "last_seq": self.last_seq,
            "ticks": self.ticks,
            "missing": self.missing,
            "last_ts": self.last_ts,
            "restarts": self.restarts,
        }

    @classmethod
    def from_state(cls, d: State) -> GapState:
        """A restored state: ``rebase`` is set, so its next step forward counts at most one
        missing tick (the checkpoint may be behind the replayed offsets)."""
        last_seq, last_ts = _optional_int(d, "last_seq"), _optional_int(d, "last_ts")
        return cls(
            last_seq,
            read_int(d, "ticks"),
            read_float(d, "missing"),
            last_ts,
            read_int(d, "restarts"),
        )


def _optional_int(d: State, key: str) -> int | None:
    value = read_value(d, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        msg = f"{key}: expected an int or null, got {value!r:.60}"
        raise StateError(msg)
    return value


class SequenceGaps(Signal):
    """Missing ticks of a device, from the ``sequence`` of its readings."""

    name: ClassVar[str] = "gaps"
    counts_late: ClassVar[bool] = True  # a gateway's flushed readings fill the gap
    device_state_type = GapState

    def new_device_state(self, device_type: str) -> GapState:
        return GapState()

    def on_device(self, reading: ReadingView, dev: DeviceState) -> Sequence[Finding]:
        st: GapState = dev.signals[self.key]
        seq = reading.sequence
        last = st.last_seq
        if not isinstance(seq, int) or seq == last:
            return NO_FINDINGS
        if last is not None and seq < last:
            if seq > RESTART_BELOW or st.last_ts is None or reading.ts <= st.last_ts:
                return NO_FINDINGS  # a replay, or out of order
            st.last_seq, st.last_ts, st.restarts = seq, reading.ts, st.restarts + 1
            st.rebase = False
            return [
                ScorePoint(
                    "UNKNOWN", RESTART_DETECTOR, reading.ts, float(last), 0.0, float(seq), True
                )
            ]
        a = _ALPHA
        if last is not None:
            lost = min(seq - last - 1, 1 if st.rebase else _MAX_GAP)
            for _ in range(lost):
                st.missing += a * (1.0 - st.missing)
        st.rebase = False
        st.missing *= 1.0 - a
        st.last_seq, st.last_ts = seq, reading.ts
        st.ticks += 1
        if st.ticks > 2 / a and st.missing >= self.config.gap_share:
            return [
                AlertCandidate(
                    "device:gaps",
                    "WARNING",
                    reading.ts,
                    "UNKNOWN",
                    f"{st.missing:.0%} of the recent ticks of {reading.device[1]} are missing",
                )
            ]
        return NO_FINDINGS
