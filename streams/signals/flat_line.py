"""Flat line: a normally varying series repeating one value ``stuck_after`` times.

A ``sensor:stuck:{CAPABILITY}`` WARNING. The share of repeated values is learned outside of
flat runs, so a series that often repeats (a gear, a switch) is never called stuck. A run at
an end of its capability's physical range (``PHYSICAL_RANGES``: a throttle at 0 while a
vehicle waits, a state of charge at 100) is a resting state, not a stuck sensor: at 1 Hz a
vehicle idling for half a minute repeated 0 thirty times and was called stuck.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from streams.detect.rules import PHYSICAL_RANGES
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

__all__ = ["FlatLine", "FlatLineState"]

_STUCK_BELOW = 0.3  # a series repeating its value more often than this is never stuck


@dataclass
class FlatLineState:
    """The current run of equal values of one series."""

    last_value: float = math.nan
    run: int = 0  # consecutive readings equal to the one before
    repeat_share: float = 0.0  # learned share of readings equal to the one before

    def to_state(self) -> State:
        return {"last_value": self.last_value, "run": self.run, "repeat_share": self.repeat_share}

    @classmethod
    def from_state(cls, d: State) -> FlatLineState:
        return cls(read_float(d, "last_value"), read_int(d, "run"), read_float(d, "repeat_share"))


class FlatLine(Signal):
    """A stuck sensor: the same value again and again."""

    name: ClassVar[str] = "flat_line"
    series_state_type = FlatLineState

    def new_series_state(self, device_type: str, capability: str) -> FlatLineState:
        return FlatLineState()

    def on_series(
        self, reading: ReadingView, dev: DeviceState, ser: SeriesState, *, learn: bool
    ) -> Sequence[Finding]:
        if not learn:
            return NO_FINDINGS
        st: FlatLineState = ser.signals[self.key]
        value = reading.value
        same = value == st.last_value
        st.last_value = value
        st.run = st.run + 1 if same else 0
        if st.run < self.config.stuck_after:
            st.repeat_share += 0.01 * (float(same) - st.repeat_share)
            return NO_FINDINGS
        if not (ser.detector.is_warm and st.repeat_share < _STUCK_BELOW):
            return NO_FINDINGS
        cap = ser.capability
        if value in PHYSICAL_RANGES.get(cap, ()):  # at rest at a physical bound
            return NO_FINDINGS
        return [
            AlertCandidate(
                f"sensor:stuck:{cap}",
                "WARNING",
                reading.ts,
                cap,
                f"{cap} stuck at {value:g} for {st.run + 1} readings",
            )
        ]
