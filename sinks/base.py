"""The sink contract: buffer rows per table, write them in batches, say what is durable.

In the spirit of Quix Streams' ``BatchingSink``: the worker :meth:`~BatchingSink.add`\\ s
rows (column-wise, named columns) together with the input ``(topic, partition)`` and the
first offset they came from; the sink keeps them in a :class:`RowBuffer` per table and
writes a table's rows in one :meth:`~BatchingSink.write` when the worker flushes it (size or
time bound, or before a forced commit). :meth:`~BatchingSink.pending_from` tells the
worker, per input partition, the first offset whose rows are not yet durable: Kafka offsets
are committed only below it. A failed write raises and keeps the rows and the offsets they
hold back, so nothing is committed past them. A write may run while rows are added:
:meth:`~BatchingSink.begin_flush` hands over a table's rows and keeps their offsets held
until :meth:`~BatchingSink.end_flush` (a failed write puts the rows back in front).

A new destination is a subclass that names its tables and implements :meth:`write` (and
:meth:`setup` if it creates anything at start); ``sinks/clickhouse.py`` is the first one.

>>> class ListSink(BatchingSink):
...     def __init__(self):
...         super().__init__({"t": ("ts", "v")}, clock=lambda: 0.0)
...         self.written = []
...     def write(self, batch):
...         self.written.append((batch.table, batch.rows))
>>> sink = ListSink()
>>> sink.add("t", [[1, 2], [0.5, 0.7]], ("readings", 0), first_offset=10)
>>> sink.pending_from(("readings", 0))
10
>>> sink.flush("t").rows
2
>>> sink.written, sink.pending_from(("readings", 0))
([('t', 2)], None)
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BatchingSink",
    "RowBuffer",
    "SinkBatch",
    "StoredWindows",
    "WindowRef",
]


@dataclass(frozen=True)
class SinkBatch:
    """The rows of one table handed to :meth:`BatchingSink.write` (column-wise)."""

    table: str
    column_names: tuple[str, ...]
    columns: list[list[Any]]

    @property
    def rows(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def column(self, name: str) -> list[Any]:
        """The values of column ``name``."""
        return self.columns[self.column_names.index(name)]

    def release(self) -> None:
        """Drop the rows once written. A driver may keep what it was handed in a reference
        cycle (clickhouse-connect's ``InsertContext`` holds a bound method of itself): a
        write that ran while the worker went on outlives the young collections, and its
        rows would wait for a full collection (measured: ~1 MiB/s of growth at 10k
        readings/s)."""
        for column in self.columns:
            column.clear()


class RowBuffer:
    """Rows waiting to be written to one table, column-wise, and the offsets they hold.

    ``pending_from`` keeps, per input source, the first offset of a row not yet written;
    the caller commits input offsets only below it.
    """

    def __init__(
        self, name: str, column_names: Sequence[str], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.name = name
        self.column_names = tuple(column_names)
        self._clock = clock
        self.columns: list[list[Any]] = [[] for _ in self.column_names]
        self.pending_from: dict[Hashable, int] = {}
        self.since: float | None = None
        # the rows handed to a write not yet ended (begin ... end): still held
        self.in_flight: dict[Hashable, int] = {}
        self.in_flight_rows = 0
        self._in_flight_since: float | None = None
        self._writing = False

    def __len__(self) -> int:
        return len(self.columns[0])

    def extend(self, columns: Sequence[Sequence[Any]], source: Hashable, first_offset: int) -> None:
        """Append rows given column-wise, coming from ``source`` offsets >= ``first_offset``.

        Rows of several sources may be added by calling :meth:`hold` for the others.
        """
        if len(columns) != len(self.columns):
            msg = (
                f"{self.name}: expected {len(self.columns)} columns "
                f"{list(self.column_names)}, got {len(columns)}"
            )
            raise ValueError(msg)
        if not columns[0]:
            return
        for dest, src in zip(self.columns, columns, strict=True):
            dest.extend(src)
        self.hold(source, first_offset)

    def hold(self, source: Hashable, first_offset: int) -> None:
        """Keep ``source`` offsets >= ``first_offset`` uncommitted until the next flush."""
        if source not in self.pending_from or first_offset < self.pending_from[source]:
            self.pending_from[source] = first_offset
        if self.since is None:
            self.since = self._clock()

    def due(self, max_rows: int, max_seconds: float) -> bool:
        if not len(self):
            return False
        assert self.since is not None
        return len(self) >= max_rows or self._clock() - self.since >= max_seconds

    def take(self) -> list[list[Any]]:
        """Hand over the buffered columns and start empty (offsets pending are released)."""
        cols = self.columns
        self.columns = [[] for _ in self.column_names]
        self.pending_from = {}
        self.since = None
        return cols

    def begin(self) -> list[list[Any]]:
        """Hand over the buffered columns to a write and start empty; the offsets they hold
        stay held (:attr:`in_flight`) until :meth:`end`. One write at a time."""
        if self._writing:
            msg = f"{self.name}: a write of its rows is already in flight"
            raise RuntimeError(msg)
        self._writing = True
        self.in_flight, self._in_flight_since = self.pending_from, self.since
        cols = self.take()
        self.in_flight_rows = len(cols[0])
        return cols

    def end(self, cols: list[list[Any]], *, ok: bool) -> None:
        """The write of ``cols`` (from :meth:`begin`) ended: their offsets are released when
        ``ok``; otherwise the rows go back in front of those added since, holding them."""
        if not ok:
            if cols[0]:  # in place: the driver may still hold ``cols`` (no second copy)
                for old, new in zip(cols, self.columns, strict=True):
                    old.extend(new)
                self.columns = cols
            for source, offset in self.in_flight.items():
                self.hold(source, offset)
            if self._in_flight_since is not None:
                self.since = min(self._in_flight_since, self.since or self._in_flight_since)
        self.in_flight, self.in_flight_rows, self._in_flight_since = {}, 0, None
        self._writing = False


class BatchingSink(ABC):
    """A destination for the pipeline's tables: buffered per table, written in batches.

    ``tables`` maps each table the sink stores to its column names (the order rows are
    given in). Subclasses implement :meth:`write`; everything else is the contract's.
    """

    def __init__(
        self,
        tables: Mapping[str, Sequence[str]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buffers = {name: RowBuffer(name, cols, clock) for name, cols in tables.items()}

    # -- what a destination implements --------------------------------------------------
    def setup(self) -> None:  # noqa: B027 - optional hook, nothing to create by default
        """Create what the destination needs (tables, folders) before the first write."""

    @abstractmethod
    def write(self, batch: SinkBatch) -> None:
        """Store ``batch`` durably or raise; called from a thread, never concurrently."""

    # -- the contract the worker uses ---------------------------------------------------
    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(self._buffers)

    def column_names(self, table: str) -> tuple[str, ...]:
        """The columns of ``table``, in the order :meth:`add` takes them."""
        return self._buffer(table).column_names

    def add(
        self, table: str, columns: Sequence[Sequence[Any]], source: Hashable, first_offset: int
    ) -> None:
        """Buffer rows (column-wise) read from ``source`` at offsets >= ``first_offset``."""
        self._buffer(table).extend(columns, source, first_offset)

    def hold(self, table: str, source: Hashable, first_offset: int) -> None:
        """``table``'s buffered rows also come from ``source`` offsets >= ``first_offset``."""
        self._buffer(table).hold(source, first_offset)

    def due(self, max_rows: int, max_seconds: float) -> list[str]:
        """The tables whose buffer reached ``max_rows`` rows or ``max_seconds`` of age."""
        return [name for name, buf in self._buffers.items() if buf.due(max_rows, max_seconds)]

    def buffered(self, table: str) -> int:
        """Rows of ``table`` not yet durable: waiting, or in a write not yet ended."""
        buf = self._buffer(table)
        return len(buf) + buf.in_flight_rows

    def flush(self, table: str) -> SinkBatch:
        """Write ``table``'s buffered rows; only when :meth:`write` returns are the offsets
        they held released. A failed write raises and keeps rows and offsets."""
        batch = self.begin_flush(table)
        try:
            if batch.rows:
                self.write(batch)
        except BaseException:
            self.end_flush(batch, ok=False)
            raise
        self.end_flush(batch, ok=True)
        return batch

    def begin_flush(self, table: str) -> SinkBatch:
        """``table``'s buffered rows, handed to a write that may run (in a thread) while
        more rows are added; their offsets stay held until :meth:`end_flush`."""
        buf = self._buffer(table)
        return SinkBatch(table, buf.column_names, buf.begin())

    def end_flush(self, batch: SinkBatch, *, ok: bool) -> None:
        """The write of ``batch`` (from :meth:`begin_flush`) ended: durable when ``ok``
        (offsets released), else its rows wait again, before those added meanwhile."""
        self._buffer(batch.table).end(batch.columns, ok=ok)

    def pending_from(self, source: Hashable) -> int | None:
        """The first offset of ``source`` with a row not yet durable (None: nothing held)."""
        held = [
            o
            for buf in self._buffers.values()
            for d in (buf.pending_from, buf.in_flight)
            if (o := d.get(source)) is not None
        ]
        return min(held) if held else None

    def forget(self, sources: Iterable[Hashable]) -> None:
        """Stop holding offsets of ``sources`` (partitions revoked). Their rows are still
        written: the tables deduplicate replayed rows."""
        for source in sources:
            for buf in self._buffers.values():
                buf.pending_from.pop(source, None)
                buf.in_flight.pop(source, None)

    def _buffer(self, table: str) -> RowBuffer:
        try:
            return self._buffers[table]
        except KeyError:
            msg = f"{type(self).__name__} stores no table {table!r}; it has {list(self._buffers)}"
            raise KeyError(msg) from None


WindowRef = tuple[str, str, str, int]
"""(tenant_id, device_id, capability, window_start_ms) of one window of one series."""


class StoredWindows(ABC):
    """A sink that can read back what it stored: the statistics of windows recomputed from
    the ``readings`` it holds (how late readings correct an aggregate already emitted)."""

    @abstractmethod
    def recompute_windows(self, window_ms: int, refs: Sequence[WindowRef]) -> list[dict[str, Any]]:
        """One dict per window of ``refs`` that has stored readings: the fields of a
        ``WindowAggregate`` record except ``window_size``."""
