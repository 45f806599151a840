"""The worker's per-batch logic for ``telemetry.readings``, free of Kafka and clocks.

``ReadingsProcessor.process`` takes a batch of raw input records and returns what must be
sent on: dead letters (with the reason), closed windows as ``WindowAggregate`` records, and
the rows for the ``readings`` table (column-wise, named by :data:`READING_COLUMNS`, per input
partition with the first offset they came from; the worker hands them to its sink).

Every valid reading becomes a row, whenever it arrives. A reading whose window its device
has already emitted (*late*) is stored and counted but not windowed or scored here; within
the correction horizon it is returned as a :class:`LateWindow`, so the worker can re-emit
that window's aggregate recomputed from the stored readings.
``commit_offset`` says how far input offsets may be committed as far as windows go: below
the first reading of any window still open (the worker also stays below rows its sink has
not stored), so a crash and replay rebuild everything in full.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.records import Source
from schemas import AvroCodec
from schemas.reading_columns import ColumnReader, ReadingColumns
from streams.detection import DetectionOutput, DetectionStage
from streams.records import DeadLetter, InputRecord
from streams.routing import DeviceRouter, Rekeyed, RekeyedSeen, split_misrouted
from streams.validate import EventTimeBounds, certainly_valid, check_reading
from streams.windows import ClosedWindow, PartitionWindows

__all__ = [
    "READING_COLUMNS",
    "BatchResult",
    "DeadLetter",
    "InputRecord",
    "LateWindow",
    "ReadingsProcessor",
    "RowBlock",
    "Source",
]

READING = "UniversalSensorReading"
# The columns of the ``readings`` rows, in the order :meth:`ReadingsProcessor.process`
# builds them.
READING_COLUMNS = (
    "ts",
    "tenant_id",
    "device_id",
    "device_type",
    "sensor_id",
    "capability",
    "value",
    "unit",
    "quality",
    "sequence",
    "reading_id",
    "scenario",
    "phase",
    "attributes",
)


@dataclass(frozen=True, slots=True)
class RowBlock:
    """``readings`` rows (column-wise, :data:`READING_COLUMNS`) of one input partition,
    read at offsets >= ``first_offset``."""

    source: Source
    first_offset: int
    columns: list[list[Any]]


@dataclass(frozen=True, slots=True)
class LateWindow:
    """A window that a late reading (at ``offset`` of ``source``) changed after its emission."""

    source: Source
    offset: int
    tenant_id: str
    device_id: str
    capability: str
    start_ms: int


@dataclass
class BatchResult:
    consumed: int = 0
    accepted: int = 0
    late: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    aggregates: list[dict[str, Any]] = field(default_factory=list)
    detection: DetectionOutput = field(default_factory=DetectionOutput)
    rows: list[RowBlock] = field(default_factory=list)
    late_windows: list[LateWindow] = field(default_factory=list)
    rekeyed: list[Rekeyed] = field(default_factory=list)  # to move to their device's partition
    duplicates: int = 0  # re-keyed readings already counted (re-sent after a crash)


class ReadingsProcessor:
    """Decode, validate, window; returns the ``readings`` rows for the sink."""

    def __init__(
        self,
        codec: AvroCodec,
        *,
        window_ms: int,
        lateness_ms: int,
        window_label: str,
        late_policy: str = "correct",
        correction_horizon_ms: int = 7 * 86_400_000,
        bounds: EventTimeBounds | None = None,
        detection: DetectionStage | None = None,
    ) -> None:
        self.codec = codec
        self.reader = ColumnReader(codec)
        self.window_ms = window_ms
        self.lateness_ms = lateness_ms
        self.window_label = window_label
        self.late_policy = late_policy
        self.correction_horizon_ms = correction_horizon_ms
        self.bounds = bounds
        self.detection = detection
        self.windows: dict[Source, PartitionWindows] = {}
        self.next_offset: dict[Source, int] = {}
        # Per series: (tenant_id, device_type, unit), copied into each closed window.
        self._series_meta: dict[tuple[str, str], tuple[str, str, str]] = {}
        self.router = DeviceRouter()  # partitions set by the consumer once it knows them
        self.rekeyed_seen = RekeyedSeen(window_ms)

    # -- the batch ----------------------------------------------------------------------
    def process(self, batch: Sequence[InputRecord], now_s: float = 0.0) -> BatchResult:
        """Handle one batch; ``now_s`` is the wall clock (clock-fault bounds, idle devices)."""
        result = BatchResult(consumed=len(batch))
        if not batch:
            return result
        now_ms = int(now_s * 1000)
        for partition in self.windows.values():
            partition.set_clock(now_s)
        cols = self.reader.read([r.value or b"" for r in batch])
        for rec in batch:  # records of a partition come in offset order: the last one wins
            self.next_offset[rec.source] = rec.offset + 1
        sure = certainly_valid(cols, self.bounds, now_ms)
        if sure.all():  # the usual batch: no check one by one
            keep = list(range(len(batch)))
        else:
            keep = self._checked(batch, cols, sure, now_ms, result)
        keep, result.rekeyed = split_misrouted(self.router, batch, cols.device_id, keep)
        seen = self.rekeyed_seen
        detection = self.detection
        devices, capabilities = cols.device_id, cols.capability
        values, times = cols.value, cols.timestamp
        windows: PartitionWindows | None = None
        window_src: Source | None = None
        by_source: dict[Source, list[int]] = {}
        first_offsets: dict[Source, int] = {}
        rows: list[int] = []
        for i in keep:
            rec = batch[i]
            src = rec.source
            if src != window_src:  # a batch holds few partitions, each in one run
                window_src = src
                windows = self.windows.get(src)
                if windows is None:
                    windows = self.windows[src] = PartitionWindows(self.window_ms, self.lateness_ms)
                    windows.set_clock(now_s)
                rows = by_source.get(src)  # type: ignore[assignment]
                if rows is None:
                    rows = by_source[src] = []
                    first_offsets[src] = rec.offset
            assert windows is not None
            if rec.rekeyed and seen.counted(src, cols.record(i)):
                result.duplicates += 1  # its row is stored already
                continue
            if windows.add(devices[i], capabilities[i], values[i], times[i], rec.offset):
                result.accepted += 1
                if rec.rekeyed:
                    seen.remember(src, cols.record(i))
                if detection is not None:
                    detection.observe_at(src, cols, i)
            else:
                item = cols.record(i)
                self._late(result, windows, rec, item)
                if detection is not None:
                    detection.observe_late(src, item)
            rows.append(i)
        table = cols.table_columns()
        for src, taken in by_source.items():
            if not taken:
                continue  # only re-keyed copies already stored
            a, e = taken[0], taken[-1] + 1
            if e - a == len(taken):  # one run of the batch (the usual): slices
                c = [column[a:e] for column in table]
            else:
                c = [[column[i] for i in taken] for column in table]
            # (device, capability) -> (tenant, device type, unit), the last reading's
            series = zip(c[2], c[5], strict=True)
            self._series_meta.update(zip(series, zip(c[1], c[3], c[7], strict=True), strict=True))
            result.rows.append(RowBlock(src, first_offsets[src], c))
        for src in {r.source for r in batch}:
            if (due := self.windows.get(src)) is not None:
                closed = due.close_due()
                seen.closed(src, closed)
                result.aggregates.extend(self._to_records(closed))
                result.late_windows.extend(self._recheck(src, closed))
        if self.detection is not None:
            self.detection.tick({r.source for r in batch})
            result.detection = self.detection.take()
        return result

    def _checked(
        self,
        batch: Sequence[InputRecord],
        cols: ReadingColumns,
        sure: np.ndarray,
        now_ms: int,
        result: BatchResult,
    ) -> list[int]:
        """The readings that pass, one by one (those not ``sure``); the others are dead
        letters of ``result``."""
        keep = []
        for i, (rec, ok) in enumerate(zip(batch, sure.tolist(), strict=True)):
            if not ok:
                error = cols.error(i)
                if error is not None:
                    result.dead_letters.append(DeadLetter(rec, error.reason, str(error), "decode"))
                    continue
                problem = check_reading(cols.record(i), self.bounds, now_ms)
                if problem is not None:
                    result.dead_letters.append(DeadLetter(rec, problem[0], problem[1], "validate"))
                    continue
            keep.append(i)
        return keep

    def _late(
        self, result: BatchResult, windows: PartitionWindows, rec: InputRecord, item: dict
    ) -> None:
        """A reading of a window its device already emitted: stored (the caller adds the row),
        counted, and within the horizon a correction of that window."""
        result.late += 1
        if self.late_policy != "correct":
            return
        device, ts = item["device_id"], item["timestamp"]
        watermark = windows.watermark_ms(device)
        if watermark is not None and ts < watermark - self.correction_horizon_ms:
            return
        result.late_windows.append(
            LateWindow(
                rec.source,
                rec.offset,
                item["tenant_id"],
                device,
                item["capability"],
                ts - ts % self.window_ms,
            )
        )

    def _recheck(self, src: Source, closed: Iterable[ClosedWindow]) -> list[LateWindow]:
        """A device's first window since its clock started here may lack readings that an
        earlier worker stored before a restart: recompute it from the store as well."""
        if self.late_policy != "correct":
            return []
        out = []
        for w in closed:
            if w.fresh:
                tenant = self._series_meta[(w.device_id, w.capability)][0]
                out.append(
                    LateWindow(src, w.first_offset, tenant, w.device_id, w.capability, w.start_ms)
                )
        return out

    def close_idle(
        self, now_s: float, idle_s: float
    ) -> tuple[list[dict[str, Any]], list[LateWindow]]:
        """Close the windows of every device silent for ``idle_s`` of wall clock: their
        aggregates, and the first windows to recompute (see :meth:`_recheck`)."""
        out: list[dict[str, Any]] = []
        recheck: list[LateWindow] = []
        for src, windows in self.windows.items():
            closed = windows.close_idle(now_s, idle_s)
            self.rekeyed_seen.closed(src, closed)
            out.extend(self._to_records(closed))
            recheck.extend(self._recheck(src, closed))
        return out, recheck

    def seed_clocks(self, latest: Mapping[Source, Iterable[tuple[str, int]]]) -> None:
        """Device clocks from checkpointed ``(device_id, latest event ms)`` per source
        (:meth:`streams.windows.PartitionWindows.seed`): after a restart, lateness is judged
        as the partition's previous owner judged it."""
        for src, devices in latest.items():
            windows = self.windows.get(src)
            if windows is None:
                windows = self.windows[src] = PartitionWindows(self.window_ms, self.lateness_ms)
            for device_id, ts_ms in devices:
                if ts_ms >= 0:  # -1: no reading seen
                    windows.seed(device_id, ts_ms)

    def close_all(self, sources: Iterable[Source] | None = None) -> list[dict[str, Any]]:
        """Close every open window of ``sources`` (all by default): the input went idle."""
        out: list[dict[str, Any]] = []
        for src in list(self.windows if sources is None else sources):
            if src in self.windows:
                closed = self.windows[src].close_all()
                self.rekeyed_seen.closed(src, closed)
                out.extend(self._to_records(closed))
        return out

    def _to_records(self, closed: Iterable[ClosedWindow]) -> list[dict[str, Any]]:
        out = []
        for w in closed:
            tenant, dtype, unit = self._series_meta[(w.device_id, w.capability)]
            out.append(
                {
                    "window_start": w.start_ms,
                    "window_end": w.end_ms,
                    "window_size": self.window_label,
                    "tenant_id": tenant,
                    "device_id": w.device_id,
                    "device_type": dtype,
                    "capability": w.capability,
                    "unit": unit,
                    "count": w.count,
                    "mean": w.mean,
                    "min": w.min,
                    "max": w.max,
                    "std": w.std,
                    "first": w.first,
                    "last": w.last,
                    "first_ts": w.first_ts,
                    "last_ts": w.last_ts,
                }
            )
        return out

    # -- progress -----------------------------------------------------------------------
    def commit_offset(self, source: Source) -> int | None:
        """The offset up to which ``source`` may be committed as far as its windows go
        (None: nothing seen); rows not yet stored are the sink's to hold back."""
        nxt = self.next_offset.get(source)
        if nxt is None:
            return None
        candidates = [nxt]
        windows = self.windows.get(source)
        if windows is not None and (low := windows.min_open_offset()) is not None:
            candidates.append(low)
        return min(candidates)

    def open_windows(self) -> int:
        return sum(w.open_count for w in self.windows.values())

    def forget(self, sources: Iterable[Source]) -> None:
        """Drop the state of partitions this worker no longer owns (after a rebalance).

        Only the bookkeeping for their commits is dropped here (the sink drops the offsets
        its buffered rows hold; the rows are still written, deduplicated on the reading id).
        """
        sources = list(sources)
        if self.detection is not None:
            self.detection.forget(sources)
        self.rekeyed_seen.forget(sources)
        for src in sources:
            self.windows.pop(src, None)
            self.next_offset.pop(src, None)
