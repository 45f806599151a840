"""Tumbling event-time windows per (device, capability), with allowed lateness.

Pure logic: no Kafka, no clock. One :class:`PartitionWindows` holds the open windows of one
input partition. A reading lands in the window ``[start, start + size)`` that contains its
event time. The partition's watermark is the largest event time seen minus the allowed
lateness; a window closes once the watermark reaches its end. A reading whose window has
already closed is *late* and is refused (the caller applies the late policy).

Each window remembers the smallest input offset that contributed to it, so the caller can
commit input offsets only up to the first reading of a window still open: after a crash,
replay from the committed offset rebuilds every open window in full.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "ClosedWindow",
    "PartitionWindows",
    "WindowAccumulator",
    "WindowKey",
    "window_start_for",
]

WindowKey = tuple[str, str, int]
"""(device_id, capability, window_start_ms)."""


def window_start_for(ts_ms: int, size_ms: int) -> int:
    """Start of the tumbling window of ``size_ms`` that contains ``ts_ms``.

    >>> window_start_for(125_000, 60_000)
    120000
    >>> window_start_for(-1, 60_000)
    -60000
    """
    return ts_ms - ts_ms % size_ms


class WindowAccumulator:
    """Running statistics of one window: O(1) state, Welford's variance."""

    __slots__ = (
        "count",
        "first",
        "first_offset",
        "first_ts",
        "last",
        "last_ts",
        "m2",
        "max",
        "mean",
        "min",
    )

    def __init__(self, value: float, ts_ms: int, offset: int) -> None:
        self.count = 1
        self.mean = value
        self.m2 = 0.0
        self.min = value
        self.max = value
        self.first = value
        self.first_ts = ts_ms
        self.last = value
        self.last_ts = ts_ms
        self.first_offset = offset

    def add(self, value: float, ts_ms: int, offset: int) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        # first/last follow event time, not arrival order (ties keep arrival order).
        if ts_ms < self.first_ts:
            self.first, self.first_ts = value, ts_ms
        if ts_ms >= self.last_ts:
            self.last, self.last_ts = value, ts_ms
        if offset < self.first_offset:
            self.first_offset = offset

    @property
    def std(self) -> float:
        """Population standard deviation (``stddevPop`` in ClickHouse)."""
        return math.sqrt(self.m2 / self.count) if self.count > 1 else 0.0


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """A window whose end the watermark has passed; its statistics are final."""

    device_id: str
    capability: str
    start_ms: int
    end_ms: int
    count: int
    mean: float
    min: float
    max: float
    std: float
    first: float
    last: float
    first_ts: int
    last_ts: int


class PartitionWindows:
    """Open windows and the watermark of one input partition."""

    def __init__(self, size_ms: int, lateness_ms: int) -> None:
        if size_ms <= 0:
            msg = f"window size must be positive, got {size_ms} ms"
            raise ValueError(msg)
        if lateness_ms < 0:
            msg = f"allowed lateness must be >= 0, got {lateness_ms} ms"
            raise ValueError(msg)
        self.size_ms = size_ms
        self.lateness_ms = lateness_ms
        self.max_event_ms: int | None = None
        self._open: dict[WindowKey, WindowAccumulator] = {}
        self._by_start: dict[int, list[WindowKey]] = {}
        self._starts: list[int] = []  # heap of window starts that have open windows
        self._closed_until = -(2**62)  # every window ending at or before this is closed

    # -- state ------------------------------------------------------------------------
    @property
    def watermark_ms(self) -> int | None:
        if self.max_event_ms is None:
            return None
        return self.max_event_ms - self.lateness_ms

    @property
    def open_count(self) -> int:
        return len(self._open)

    def min_open_offset(self) -> int | None:
        """Smallest input offset of any reading in an open window (None if none open)."""
        if not self._open:
            return None
        return min(acc.first_offset for acc in self._open.values())

    # -- updates ----------------------------------------------------------------------
    def add(self, device_id: str, capability: str, value: float, ts_ms: int, offset: int) -> bool:
        """Add one reading; False (nothing changed) when its window is already closed."""
        start = ts_ms - ts_ms % self.size_ms
        end = start + self.size_ms
        # Late means: the window ended at or before the watermark as it stood when the
        # reading arrived (so the outcome depends on input order only, not on batching).
        if end <= self._closed_until or (
            self.max_event_ms is not None and end <= self.max_event_ms - self.lateness_ms
        ):
            return False
        key = (device_id, capability, start)
        acc = self._open.get(key)
        if acc is None:
            self._open[key] = WindowAccumulator(value, ts_ms, offset)
            bucket = self._by_start.get(start)
            if bucket is None:
                self._by_start[start] = [key]
                heapq.heappush(self._starts, start)
            else:
                bucket.append(key)
        else:
            acc.add(value, ts_ms, offset)
        if self.max_event_ms is None or ts_ms > self.max_event_ms:
            self.max_event_ms = ts_ms
        return True

    def close_due(self) -> list[ClosedWindow]:
        """Close every window whose end the watermark has reached, oldest first."""
        watermark = self.watermark_ms
        if watermark is None:
            return []
        return list(self._close_until(watermark))

    def close_all(self) -> list[ClosedWindow]:
        """Close every open window (used when the input has gone idle)."""
        if not self._starts:
            return []
        last_end = max(self._starts) + self.size_ms
        return list(self._close_until(last_end))

    def _close_until(self, boundary_ms: int) -> Iterator[ClosedWindow]:
        if boundary_ms > self._closed_until:
            self._closed_until = boundary_ms
        size = self.size_ms
        while self._starts and self._starts[0] + size <= boundary_ms:
            start = heapq.heappop(self._starts)
            for key in self._by_start.pop(start):
                acc = self._open.pop(key)
                yield ClosedWindow(
                    device_id=key[0],
                    capability=key[1],
                    start_ms=start,
                    end_ms=start + size,
                    count=acc.count,
                    mean=acc.mean,
                    min=acc.min,
                    max=acc.max,
                    std=acc.std,
                    first=acc.first,
                    last=acc.last,
                    first_ts=acc.first_ts,
                    last_ts=acc.last_ts,
                )
