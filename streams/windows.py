"""Tumbling event-time windows per (device, capability), each device on its own clock.

Pure logic: no Kafka, no clock of its own. One :class:`PartitionWindows` holds the open
windows of one input partition. A reading lands in the window ``[start, start + size)`` that
contains its event time. Each *device* has its own watermark: the largest event time seen
from that device minus the allowed lateness; a device's window closes once that device's
watermark reaches its end, or when the device has sent nothing for the idle timeout (wall
clock, given by the caller). Another device's clock never closes a window, so a device
whose clock lags its neighbours, a gateway flushing an hour-old buffer and a replay of
2014 history beside a live fleet are all on time. A reading whose window this device has
already closed is *late* and is refused here (the caller stores it raw and counts it).

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
    """A window whose end the watermark has passed; its statistics are final.

    ``fresh`` marks the first window its device closed since its clock started here: after
    a restart it may hold only the readings replayed from the committed offset (the caller
    recomputes it from the stored readings).
    """

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
    first_offset: int = 0
    fresh: bool = False


class _DeviceClock:
    """One device's event-time clock and the starts of its open windows."""

    __slots__ = ("by_start", "closed_until", "fresh", "max_event_ms", "seen_s", "starts")

    def __init__(self, seen_s: float) -> None:
        self.max_event_ms: int | None = None
        self.closed_until = -(2**62)  # every window ending at or before this is closed
        self.starts: list[int] = []  # heap of window starts that have open windows
        self.by_start: dict[int, list[WindowKey]] = {}
        self.seen_s = seen_s  # wall clock of the last batch that carried this device
        self.fresh = True  # no window closed yet since this clock started


class PartitionWindows:
    """Open windows of one input partition, closed by each device's own clock.

    >>> w = PartitionWindows(size_ms=60_000, lateness_ms=0)
    >>> w.add("a", "T", 1.0, 1_000, offset=0), w.add("b", "T", 2.0, 3_600_000, offset=1)
    (True, True)
    >>> w.close_due()  # b's clock is an hour ahead: a's window stays open
    []
    >>> w.add("a", "T", 3.0, 61_000, offset=2)  # a's own clock passes its window's end
    True
    >>> [(c.device_id, c.start_ms, c.count) for c in w.close_due()]
    [('a', 0, 1)]
    >>> w.add("a", "T", 9.0, 2_000, offset=3)  # a's window was emitted: late
    False
    """

    def __init__(self, size_ms: int, lateness_ms: int) -> None:
        if size_ms <= 0:
            msg = f"window size must be positive, got {size_ms} ms"
            raise ValueError(msg)
        if lateness_ms < 0:
            msg = f"allowed lateness must be >= 0, got {lateness_ms} ms"
            raise ValueError(msg)
        self.size_ms = size_ms
        self.lateness_ms = lateness_ms
        self._open: dict[WindowKey, WindowAccumulator] = {}
        self._devices: dict[str, _DeviceClock] = {}
        self._due: set[str] = set()  # devices whose watermark passed an open window's end
        self._now_s = 0.0

    # -- state ------------------------------------------------------------------------
    @property
    def max_event_ms(self) -> int | None:
        """The newest event time of any device (for reporting only: it closes nothing)."""
        times = [d.max_event_ms for d in self._devices.values() if d.max_event_ms is not None]
        return max(times) if times else None

    def watermark_ms(self, device_id: str) -> int | None:
        """``device_id``'s watermark: its newest event time minus the allowed lateness."""
        dev = self._devices.get(device_id)
        if dev is None or dev.max_event_ms is None:
            return None
        return dev.max_event_ms - self.lateness_ms

    @property
    def open_count(self) -> int:
        return len(self._open)

    @property
    def device_count(self) -> int:
        return len(self._devices)

    def min_open_offset(self) -> int | None:
        """Smallest input offset of any reading in an open window (None if none open)."""
        if not self._open:
            return None
        return min(acc.first_offset for acc in self._open.values())

    # -- updates ----------------------------------------------------------------------
    def seed(self, device_id: str, max_event_ms: int) -> None:
        """Start ``device_id``'s clock at ``max_event_ms`` (its latest event time as an
        earlier owner of this partition checkpointed it), unless it has a clock already.

        A restarted worker then judges lateness as its predecessor did: readings for
        windows the predecessor had closed are late (corrected from the store), not the
        start of new windows holding only the replayed share (a device whose clock had
        jumped back before the restart made those windows short).
        """
        if device_id not in self._devices:
            dev = self._devices[device_id] = _DeviceClock(self._now_s)
            dev.max_event_ms = max_event_ms

    def set_clock(self, now_s: float) -> None:
        """The wall clock of the batch about to be added (stamped on the devices it carries)."""
        self._now_s = now_s

    def add(self, device_id: str, capability: str, value: float, ts_ms: int, offset: int) -> bool:
        """Add one reading; False (nothing changed) when its device closed its window."""
        dev = self._devices.get(device_id)
        if dev is None:
            dev = self._devices[device_id] = _DeviceClock(self._now_s)
        else:
            dev.seen_s = self._now_s
        size = self.size_ms
        start = ts_ms - ts_ms % size
        end = start + size
        # Late means: the window ended at or before this device's watermark as it stood when
        # the reading arrived (so the outcome depends on input order only, not on batching).
        if end <= dev.closed_until or (
            dev.max_event_ms is not None and end <= dev.max_event_ms - self.lateness_ms
        ):
            return False
        key = (device_id, capability, start)
        acc = self._open.get(key)
        if acc is None:
            self._open[key] = WindowAccumulator(value, ts_ms, offset)
            bucket = dev.by_start.get(start)
            if bucket is None:
                dev.by_start[start] = [key]
                heapq.heappush(dev.starts, start)
            else:
                bucket.append(key)
        else:
            acc.add(value, ts_ms, offset)
        if dev.max_event_ms is None or ts_ms > dev.max_event_ms:
            dev.max_event_ms = ts_ms
            if dev.starts[0] + size <= ts_ms - self.lateness_ms:
                self._due.add(device_id)
        return True

    def close_due(self) -> list[ClosedWindow]:
        """Close every window whose device's watermark has reached its end, oldest first."""
        out: list[ClosedWindow] = []
        for device_id in self._due:
            dev = self._devices[device_id]
            if dev.max_event_ms is not None:
                out.extend(self._close_until(dev, dev.max_event_ms - self.lateness_ms))
        self._due.clear()
        out.sort(key=_window_order)
        return out

    def close_idle(self, now_s: float, idle_s: float) -> list[ClosedWindow]:
        """Close the windows of every device that has sent nothing for ``idle_s`` (wall clock).

        A device that comes back later than that finds those windows closed: its readings
        for them are late. Devices idle for ten times as long, with nothing open, are
        forgotten (their clock starts afresh), which bounds the state of a churning fleet.
        """
        out: list[ClosedWindow] = []
        forget: list[str] = []
        for device_id, dev in self._devices.items():
            if now_s - dev.seen_s < idle_s:
                continue
            if dev.starts:
                out.extend(self._close_until(dev, max(dev.starts) + self.size_ms))
            if now_s - dev.seen_s >= 10 * idle_s:
                forget.append(device_id)
        for device_id in forget:
            del self._devices[device_id]
            self._due.discard(device_id)
        out.sort(key=_window_order)
        return out

    def close_all(self) -> list[ClosedWindow]:
        """Close every open window of every device (the whole partition went idle)."""
        out: list[ClosedWindow] = []
        for dev in self._devices.values():
            if dev.starts:
                out.extend(self._close_until(dev, max(dev.starts) + self.size_ms))
        self._due.clear()
        out.sort(key=_window_order)
        return out

    def _close_until(self, dev: _DeviceClock, boundary_ms: int) -> Iterator[ClosedWindow]:
        if boundary_ms > dev.closed_until:
            dev.closed_until = boundary_ms
        size = self.size_ms
        while dev.starts and dev.starts[0] + size <= boundary_ms:
            start = heapq.heappop(dev.starts)
            fresh, dev.fresh = dev.fresh, False
            for key in dev.by_start.pop(start):
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
                    first_offset=acc.first_offset,
                    fresh=fresh,
                )


def _window_order(w: ClosedWindow) -> tuple[int, str, str]:
    return (w.start_ms, w.device_id, w.capability)
