"""Wide CSV replay: one time column and many sensor columns, the readings of one device.

A machine logs all its signals in one row per instant (SKAB's test rig: ``datetime;
Accelerometer1RMS;…;Volume Flow RateRMS``). Each mapped column becomes one capability of
the device; every row yields one reading per mapped column.

The column map is ``--columns 'Pressure=PRESSURE,Current=MOTOR_CURRENT'`` or a mapping file
(``--columns-file``): one ``column=CAPABILITY`` per line, blank lines and ``#`` comments
ignored. Column names may contain spaces (``Volume Flow RateRMS=FLOW``); capabilities are
the symbols of the reading schema (case-insensitive, ``UNKNOWN`` refused), each at most once
(a reading id is ``{device}/{capability}@{ts}``, so two columns on one capability would
collide). Everything is checked (file, header, every mapped column present, capabilities)
before anything is produced.

A cell that does not parse as a finite number is a bad cell, reported with its line and
column; the other cells of that row still count (one broken sensor does not silence the
others). A row whose time does not parse is skipped whole (its cells have no time).
"""

from __future__ import annotations

import csv
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from producers.replay import (
    BadRow,
    ReplayError,
    ReplayReport,
    ReplayRun,
    parse_timestamp,
    resolve_capability,
)
from schemas import AvroCodec
from topics.producer import ProducerMetrics, RecordProducer

__all__ = [
    "DEVICE_TYPES",
    "WideCsvSource",
    "WideRow",
    "parse_column_map",
    "read_columns_file",
    "replay_wide",
    "resolve_device_type",
]

DEVICE_TYPES = ("UNKNOWN", "GRID_GUARDIAN", "EDGE_HUB", "BATTERY_PACK", "VEHICLE", "MACHINE")


@dataclass(frozen=True)
class WideRow:
    """One row of a wide CSV: its time and the values of the cells that parsed, in column
    map order, as ``(capability, value)``."""

    line: int
    ts_ms: int
    values: tuple[tuple[str, float], ...]


def parse_column_map(text: str, option: str = "--columns") -> dict[str, str]:
    """``'col=CAP,col2=CAP2'`` (or the lines of a mapping file) -> ``{column: CAPABILITY}``.

    >>> parse_column_map("Pressure=pressure, Volume Flow RateRMS=FLOW")
    {'Pressure': 'PRESSURE', 'Volume Flow RateRMS': 'FLOW'}
    >>> parse_column_map("Pressure")
    Traceback (most recent call last):
    ...
    producers.replay.ReplayError: --columns: 'Pressure' is not column=CAPABILITY
    """
    return _column_map(
        [(None, part) for part in text.split(",") if part.strip()], option, "column=CAPABILITY"
    )


def read_columns_file(path: str | Path) -> dict[str, str]:
    """The column map of a mapping file: ``column=CAPABILITY`` per line, ``#`` comments."""
    path = Path(path)
    if not path.is_file():
        msg = f"--columns-file {str(path)!r} does not exist or is not a file"
        raise ReplayError(msg)
    entries: list[tuple[int | None, str]] = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if line:
            entries.append((n, line))
    return _column_map(entries, f"--columns-file {path.name}", "column=CAPABILITY per line")


def _column_map(entries: list[tuple[int | None, str]], option: str, form: str) -> dict[str, str]:
    out: dict[str, str] = {}
    used: dict[str, str] = {}
    for n, entry in entries:
        where = f"{option}" if n is None else f"{option} line {n}"
        column, sep, cap = entry.partition("=")
        column, cap = column.strip(), cap.strip()
        if not (sep and column and cap):
            msg = f"{where}: {entry.strip()!r} is not {form}"
            raise ReplayError(msg)
        try:
            capability = resolve_capability(cap)
        except ReplayError as exc:
            msg = f"{where}: column {column!r}: {exc}".replace("--capability ", "capability ")
            raise ReplayError(msg) from exc
        if column in out:
            msg = f"{where}: column {column!r} is mapped twice"
            raise ReplayError(msg)
        if capability in used:
            msg = (
                f"{where}: columns {used[capability]!r} and {column!r} both map to {capability}; "
                "a device has one series per capability"
            )
            raise ReplayError(msg)
        out[column] = capability
        used[capability] = column
    if not out:
        msg = f"{option}: no column=CAPABILITY given"
        raise ReplayError(msg)
    return out


def resolve_device_type(name: str) -> str:
    """The DeviceType symbol for ``name`` (case-insensitive).

    >>> resolve_device_type("machine")
    'MACHINE'
    """
    wanted = name.strip().upper()
    if wanted not in DEVICE_TYPES:
        msg = (
            f"--device-type {name!r} is not a device type; choose one of {', '.join(DEVICE_TYPES)}"
        )
        raise ReplayError(msg)
    return wanted


class WideCsvSource:
    """Iterate :class:`WideRow` and :class:`BadRow` (bad time, bad cell) in file order."""

    def __init__(
        self,
        path: Path,
        timestamp_column: str,
        columns: dict[str, str],
        *,
        separator: str = ",",
    ) -> None:
        self.path = Path(path)
        if len(separator) != 1:
            msg = f"--separator must be one character, got {separator!r}"
            raise ReplayError(msg)
        self.separator = separator
        if not self.path.is_file():
            msg = f"FILE {str(self.path)!r} does not exist or is not a file"
            raise ReplayError(msg)
        with self.path.open(newline="", encoding="utf-8") as fh:
            header = [h.strip() for h in next(csv.reader(fh, delimiter=separator), [])]
        if timestamp_column not in header:
            msg = (
                f"--timestamp-column {timestamp_column!r} is not a column of {self.path.name} "
                f"(separator {separator!r}); columns: {header}"
            )
            raise ReplayError(msg)
        missing = [c for c in columns if c not in header]
        if missing:
            msg = (
                f"--columns: column(s) {missing} not in the header of {self.path.name} "
                f"(separator {separator!r}); columns: {header}"
            )
            raise ReplayError(msg)
        self.columns = dict(columns)
        self._ts_i = header.index(timestamp_column)
        self._cells = [(header.index(c), c, cap) for c, cap in columns.items()]
        self._width = max([self._ts_i, *(i for i, _, _ in self._cells)]) + 1

    def __iter__(self) -> Iterator[WideRow | BadRow]:
        with self.path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh, delimiter=self.separator)
            next(reader, None)
            for fields in reader:
                line = reader.line_num
                if not fields:
                    continue
                try:
                    ts = parse_timestamp(fields[self._ts_i])
                except (ValueError, OverflowError, IndexError):
                    cell = fields[self._ts_i] if len(fields) > self._ts_i else ""
                    yield BadRow(line, f"unparseable timestamp {cell!r}")
                    continue
                values: list[tuple[str, float]] = []
                for i, column, cap in self._cells:
                    cell = fields[i] if i < len(fields) else ""
                    try:
                        value = float(cell)
                    except ValueError:
                        value = math.nan
                    if math.isfinite(value):
                        values.append((cap, value))
                    else:
                        yield BadRow(line, f"column {column!r}: unparseable value {cell!r}")
                yield WideRow(line, ts, tuple(values))


def replay_wide(
    source: WideCsvSource,
    device_id: str,
    producer: RecordProducer,
    codec: AvroCodec,
    topic: str,
    *,
    device_type: str = "UNKNOWN",
    speed: float = 0.0,
    batch: int = 5_000,
    tenant_id: str = "default",
    stop: threading.Event | None = None,
    on_bad_row: Callable[[BadRow], None] | None = None,
    metrics: ProducerMetrics | None = None,
    time_offset_ms: int = 0,
    first_sequence: int = 0,
) -> ReplayReport:
    """Send every row's cells as readings of ``device_id``, one per mapped capability.

    Reading ids are ``{device}/{capability}@{ts}`` (stable: a second replay deduplicates);
    ``sequence`` counts rows from ``first_sequence`` (one number per instant, as a device's
    tick). ``report.sent`` counts readings; ``report.skipped`` counts bad rows and cells.
    """
    run = ReplayRun(producer, codec, topic, device_id, speed, stop, on_bad_row, metrics)
    for seq, item in enumerate(run.rows(source), start=first_sequence):
        ts = item.ts_ms + time_offset_ms
        for cap, value in item.values:
            sensor = f"{device_id}/{cap.lower()}"
            run.pending.append(
                {
                    "reading_id": f"{sensor}@{ts}",
                    "device_id": device_id,
                    "device_type": device_type,
                    "sensor_id": sensor,
                    "capability": cap,
                    "value": value,
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
