"""Replay a recorded sensor log (CSV: a timestamp column and a value column) as readings.

The file is streamed row by row (never loaded whole). A row whose time or number cannot be
parsed is reported with its line number and skipped. Reading ids are
``{device}/{capability}@{ts}``, so replaying a file twice yields the same ids and the sinks
deduplicate. Everything that can be checked (file, columns, capability, speed) is checked
before anything is produced.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from producers.encoding import READING_SCHEMA
from schemas import AvroCodec, load_schema
from topics.producer import ProducerMetrics, RecordProducer

__all__ = [
    "BadRow",
    "CsvSource",
    "ReplayError",
    "ReplayReport",
    "ReplayRun",
    "Row",
    "parse_speed",
    "parse_timestamp",
    "replay",
    "resolve_capability",
]


MAX_BAD_ROWS_KEPT = 1_000  # all are counted and passed to on_bad_row; these many are kept


class ReplayError(ValueError):
    """A replay option or input that cannot work; the message names the option."""


@dataclass(frozen=True)
class Row:
    line: int
    ts_ms: int
    value: float


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


def parse_timestamp(text: str) -> int:
    """Epoch ms from ISO 8601 (naive = UTC) or epoch seconds / milliseconds."""
    text = text.strip()
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if math.isfinite(number):
        return int(number if abs(number) >= 1e11 else number * 1000)
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return round(when.timestamp() * 1000)


def resolve_capability(name: str) -> str:
    """The Capability symbol for ``name`` (case-insensitive); UNKNOWN is refused."""
    for f in load_schema(READING_SCHEMA)["fields"]:
        if f["name"] == "capability":
            symbols = [s for s in f["type"]["symbols"] if s != "UNKNOWN"]
    wanted = name.strip().upper()
    if wanted not in symbols:
        msg = (
            f"--capability {name!r} is not a capability; choose one of {', '.join(symbols)} "
            "(GENERIC for a series of unknown meaning)"
        )
        raise ReplayError(msg)
    return wanted


def parse_speed(text: str) -> float:
    """``max`` -> 0 (as fast as possible), else a factor > 0 of the recorded pace."""
    if text.strip().lower() == "max":
        return 0.0
    try:
        speed = float(text)
    except ValueError:
        speed = math.nan
    if not (math.isfinite(speed) and speed > 0):
        msg = f"--speed must be a number > 0 or 'max', got {text!r}"
        raise ReplayError(msg)
    return speed


class CsvSource:
    """The replay-source contract: iterate :class:`Row` and :class:`BadRow` in file order."""

    def __init__(
        self, path: Path, timestamp_column: str, value_column: str, separator: str = ","
    ) -> None:
        self.path = Path(path)
        self.separator = separator
        if not self.path.is_file():
            msg = f"FILE {str(self.path)!r} does not exist or is not a file"
            raise ReplayError(msg)
        with self.path.open(newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh, delimiter=separator), [])
        header = [h.strip() for h in header]
        for option, column in (
            ("--timestamp-column", timestamp_column),
            ("--value-column", value_column),
        ):
            if column not in header:
                msg = f"{option} {column!r} is not a column of {self.path.name}; columns: {header}"
                raise ReplayError(msg)
        self._ts_i = header.index(timestamp_column)
        self._v_i = header.index(value_column)

    def __iter__(self) -> Iterator[Row | BadRow]:
        with self.path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh, delimiter=self.separator)
            next(reader, None)
            for fields in reader:
                line = reader.line_num
                if not fields:
                    continue
                if len(fields) <= max(self._ts_i, self._v_i):
                    yield BadRow(line, f"{len(fields)} field(s), expected more")
                    continue
                try:
                    ts = parse_timestamp(fields[self._ts_i])
                except (ValueError, OverflowError):
                    yield BadRow(line, f"unparseable timestamp {fields[self._ts_i]!r}")
                    continue
                try:
                    value = float(fields[self._v_i])
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    yield BadRow(line, f"unparseable value {fields[self._v_i]!r}")
                    continue
                yield Row(line, ts, value)


@dataclass
class ReplayReport:
    sent: int = 0
    skipped: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    delivered: int = 0
    undelivered: int = 0
    last_error: str | None = None


class _Timed(Protocol):
    @property
    def ts_ms(self) -> int: ...


R = TypeVar("R", bound=_Timed)


class ReplayRun:
    """What every replay shares: bad rows counted and reported, rows paced in event time
    (``speed`` x the recorded pace; 0 = as fast as possible), readings encoded and sent in
    batches keyed by the device, and the final flush into the report."""

    def __init__(
        self,
        producer: RecordProducer,
        codec: AvroCodec,
        topic: str,
        device_id: str,
        speed: float,
        stop: threading.Event | None,
        on_bad_row: Callable[[BadRow], None] | None,
        metrics: ProducerMetrics | None,
    ) -> None:
        self.producer, self.codec, self.topic = producer, codec, topic
        self.key = device_id.encode()
        self.speed = speed
        self.stop = stop or threading.Event()
        self.on_bad_row = on_bad_row
        self.metrics = metrics
        self.report = ReplayReport()
        self.pending: list[dict] = []

    def send(self) -> None:
        """Encode and send the pending readings."""
        if self.pending:
            values = self.codec.encode_batch(READING_SCHEMA, self.pending)
            self.producer.send_batch(self.topic, [self.key] * len(values), values)
            self.report.sent += len(values)
            self.pending.clear()
        if self.metrics is not None:
            self.metrics.observe(self.report.sent, self.report.skipped, self.producer)

    def rows(self, source: Iterable[R | BadRow]) -> Iterator[R]:
        """The good rows of ``source``, each when its pace says (bad rows are counted)."""
        first_ts: int | None = None
        wall0 = time.monotonic()
        for item in source:
            if self.stop.is_set():
                return
            if isinstance(item, BadRow):
                self.report.skipped += 1
                if len(self.report.bad_rows) < MAX_BAD_ROWS_KEPT:
                    self.report.bad_rows.append(item)
                if self.on_bad_row is not None:
                    self.on_bad_row(item)
                continue
            if self.speed > 0:
                first_ts = item.ts_ms if first_ts is None else first_ts
                delay = wall0 + (item.ts_ms - first_ts) / 1000.0 / self.speed - time.monotonic()
                if delay > 0:
                    self.send()
                    if self.stop.wait(delay):
                        return
            yield item

    def finish(self) -> ReplayReport:
        """Send what is pending, wait for the broker's acknowledgements; the report."""
        self.send()
        report = self.report
        report.undelivered = self.producer.flush(timeout=120.0)
        report.delivered = self.producer.delivered
        report.last_error = self.producer.last_error
        if self.metrics is not None:
            self.metrics.observe(report.sent, report.skipped, self.producer)
        return report


def replay(
    source: CsvSource,
    device_id: str,
    capability: str,
    producer: RecordProducer,
    codec: AvroCodec,
    topic: str,
    *,
    speed: float = 0.0,
    batch: int = 5_000,
    tenant_id: str = "default",
    stop: threading.Event | None = None,
    on_bad_row: Callable[[BadRow], None] | None = None,
    metrics: ProducerMetrics | None = None,
    time_offset_ms: int = 0,
    device_type: str = "UNKNOWN",
) -> ReplayReport:
    """Send the source's rows as readings of one device/capability, paced by ``speed``.

    ``time_offset_ms`` is added to every row's event time (and so to its reading id); the
    NAB benchmark uses it to lay several recorded files end to end on one time axis.
    """
    run = ReplayRun(producer, codec, topic, device_id, speed, stop, on_bad_row, metrics)
    sensor = f"{device_id}/{capability.lower()}"
    for seq, item in enumerate(run.rows(source)):
        ts = item.ts_ms + time_offset_ms
        run.pending.append(
            {
                "reading_id": f"{sensor}@{ts}",
                "device_id": device_id,
                "device_type": device_type,
                "sensor_id": sensor,
                "capability": capability,
                "value": item.value,
                "unit": "",
                "timestamp": ts,
                "sequence": seq,
                "tenant_id": tenant_id,
                "attributes": {"source": source.path.name, "line": str(item.line)},
                "label": None,
            }
        )
        if len(run.pending) >= batch:
            run.send()
    return run.finish()
