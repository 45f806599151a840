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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.records import Source
from schemas import AvroCodec, DecodeError
from streams.detection import DetectionOutput, DetectionStage
from streams.records import DeadLetter, InputRecord
from streams.validate import EventTimeBounds, check_reading
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

    # -- the batch ----------------------------------------------------------------------
    def process(self, batch: Sequence[InputRecord], now_s: float = 0.0) -> BatchResult:
        """Handle one batch; ``now_s`` is the wall clock (clock-fault bounds, idle devices)."""
        result = BatchResult(consumed=len(batch))
        if not batch:
            return result
        now_ms = int(now_s * 1000)
        bounds = self.bounds
        for partition in self.windows.values():
            partition.set_clock(now_s)
        decoded = self.codec.decode_batch(READING, [r.value or b"" for r in batch])
        cols: dict[Source, list[list[Any]]] = {}
        first_offsets: dict[Source, int] = {}
        for rec, item in zip(batch, decoded, strict=True):
            src = rec.source
            self.next_offset[src] = rec.offset + 1
            if isinstance(item, DecodeError):
                result.dead_letters.append(DeadLetter(rec, item.reason, str(item), "decode"))
                continue
            problem = check_reading(item, bounds, now_ms)
            if problem is not None:
                result.dead_letters.append(DeadLetter(rec, problem[0], problem[1], "validate"))
                continue
            windows = self.windows.get(src)
            if windows is None:
                windows = self.windows[src] = PartitionWindows(self.window_ms, self.lateness_ms)
                windows.set_clock(now_s)
            device, cap, ts = item["device_id"], item["capability"], item["timestamp"]
            if windows.add(device, cap, item["value"], ts, rec.offset):
                result.accepted += 1
                if self.detection is not None:
                    self.detection.observe(src, item)
            else:
                self._late(result, windows, rec, item)
                if self.detection is not None:
                    self.detection.observe_late(src, item)
            meta = (item["tenant_id"], item["device_type"], item["unit"])
            if self._series_meta.get((device, cap)) != meta:
                self._series_meta[(device, cap)] = meta
            label = item.get("label") or {}
            c = cols.get(src)
            if c is None:
                c = cols[src] = [[] for _ in READING_COLUMNS]
                first_offsets[src] = rec.offset
            c[0].append(ts)
            c[1].append(item["tenant_id"])
            c[2].append(device)
            c[3].append(item["device_type"])
            c[4].append(item["sensor_id"])
            c[5].append(cap)
            c[6].append(item["value"])
            c[7].append(item["unit"])
            c[8].append(item["quality"])
            c[9].append(item["sequence"])
            c[10].append(item["reading_id"])
            c[11].append(label.get("scenario", ""))
            c[12].append(label.get("phase", ""))
        result.rows = [RowBlock(src, first_offsets[src], c) for src, c in cols.items()]
        for src in {r.source for r in batch}:
            if (due := self.windows.get(src)) is not None:
                closed = due.close_due()
                result.aggregates.extend(self._to_records(closed))
                result.late_windows.extend(self._recheck(src, closed))
        if self.detection is not None:
            self.detection.tick({r.source for r in batch})
            result.detection = self.detection.take()
        return result

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
            out.extend(self._to_records(closed))
            recheck.extend(self._recheck(src, closed))
        return out, recheck

    def close_all(self, sources: Iterable[Source] | None = None) -> list[dict[str, Any]]:
        """Close every open window of ``sources`` (all by default): the input went idle."""
        out: list[dict[str, Any]] = []
        for src in list(self.windows if sources is None else sources):
            if src in self.windows:
                out.extend(self._to_records(self.windows[src].close_all()))
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
        for src in sources:
            self.windows.pop(src, None)
            self.next_offset.pop(src, None)
