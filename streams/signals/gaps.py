"""Sequence gaps: a device missing ticks (gaps in ``sequence``, one number per tick).

The share of missing ticks is an exponentially weighted mean over about the last 30 ticks;
once it reaches ``gap_share`` (after a warm-up of 60 ticks), a ``device:gaps`` WARNING.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from streams.detect.state import State, StateError, read_float, read_int, read_value
from streams.signals.base import (
    NO_FINDINGS,
    AlertCandidate,
    DeviceState,
    Finding,
    ReadingView,
    Signal,
)

__all__ = ["GapState", "SequenceGaps"]

_ALPHA = 1.0 / 30.0  # weight of one tick in the share of missing ticks
_MAX_GAP = 200  # ticks counted at most per gap (a restarted counter is not a huge gap)


@dataclass
class GapState:
    """The sequence numbers of one device."""

    last_seq: int | None = None
    ticks: int = 0
    missing: float = 0.0  # exponentially weighted share of missing ticks

    def to_state(self) -> State:
        return {"last_seq": self.last_seq, "ticks": self.ticks, "missing": self.missing}

    @classmethod
    def from_state(cls, d: State) -> GapState:
        last_seq = read_value(d, "last_seq")
        if last_seq is not None and (isinstance(last_seq, bool) or not isinstance(last_seq, int)):
            msg = f"last_seq: expected an int or null, got {last_seq!r:.60}"
            raise StateError(msg)
        return cls(last_seq, read_int(d, "ticks"), read_float(d, "missing"))


class SequenceGaps(Signal):
    """Missing ticks of a device, from the ``sequence`` of its readings."""

    name: ClassVar[str] = "gaps"
    device_state_type = GapState

    def new_device_state(self, device_type: str) -> GapState:
        return GapState()

    def on_device(self, reading: ReadingView, dev: DeviceState) -> Sequence[Finding]:
        st: GapState = dev.signals[self.key]
        seq = reading.sequence
        if not isinstance(seq, int) or (st.last_seq is not None and seq <= st.last_seq):
            return NO_FINDINGS
        a = _ALPHA
        if st.last_seq is not None:
            for _ in range(min(seq - st.last_seq - 1, _MAX_GAP)):
                st.missing += a * (1.0 - st.missing)
        st.missing *= 1.0 - a
        st.last_seq = seq
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
