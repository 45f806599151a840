"""The sink contract: buffer rows per table, write them in batches, say what is durable.

In the spirit of Quix Streams' ``BatchingSink``: the worker :meth:`~BatchingSink.add`\\ s
rows (column-wise, named columns) together with the input ``(topic, partition)`` and the
first offset they came from; the sink keeps them in a :class:`RowBuffer` per table and
writes a table's rows in one :meth:`~BatchingSink.write` when the worker flushes it (size or
time bound, or before a forced commit). :meth:`~BatchingSink.pending_from` tells the
worker, per input partition, the first offset whose rows are not yet durable: Kafka offsets
are committed only below it. A failed write raises and keeps the rows and the offsets they
hold back, so nothing is committed past them.

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
        """Rows of ``table`` waiting to be written."""
        return len(self._buffer(table))

    def flush(self, table: str) -> SinkBatch:
        """Write ``table``'s buffered rows; only when :meth:`write` returns are the offsets
        they held released. A failed write raises and keeps rows and offsets."""
        buf = self._buffer(table)
        batch = SinkBatch(table, buf.column_names, buf.columns)
        if batch.rows:
            self.write(batch)
        buf.take()
        return batch

    def pending_from(self, source: Hashable) -> int | None:
        """The first offset of ``source`` with a row not yet durable (None: nothing held)."""
        held = [
            o for buf in self._buffers.values() if (o := buf.pending_from.get(source)) is not None
        ]
        return min(held) if held else None

    def forget(self, sources: Iterable[Hashable]) -> None:
        """Stop holding offsets of ``sources`` (partitions revoked). Their rows are still
        written: the tables deduplicate replayed rows."""
        for source in sources:
            for buf in self._buffers.values():
                buf.pending_from.pop(source, None)

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
