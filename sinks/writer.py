"""Batched, idempotent writes to ClickHouse through clickhouse-connect.

:class:`RowBuffer` (pure) collects rows for one table, column-wise, and remembers the first
input offset per partition that is not yet safely stored; the caller commits input offsets
only below it. :class:`ClickHouseWriter` creates the tables and inserts a buffer's rows.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Sequence
from typing import Any

from core.settings import Settings
from sinks.ddl import TABLES, TableDef, create_statements

__all__ = ["ClickHouseWriter", "RowBuffer"]


class RowBuffer:
    """Rows waiting to be inserted into one table (bounded by the caller's flush rule)."""

    def __init__(self, table: TableDef, clock: Any = time.monotonic) -> None:
        self.table = table
        self._clock = clock
        self.columns: list[list[Any]] = [[] for _ in table.columns]
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
                f"{self.table.name}: expected {len(self.columns)} columns "
                f"{self.table.column_names}, got {len(columns)}"
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
        self.columns = [[] for _ in self.table.columns]
        self.pending_from = {}
        self.since = None
        return cols


class ClickHouseWriter:
    """Creates the tables and inserts column-oriented batches."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def ensure_tables(self, settings: Settings) -> None:
        for statement in create_statements(settings):
            self.client.command(statement)

    def write(self, table: str, columns: list[list[Any]]) -> int:
        """Insert the rows (column-wise) in one request; return how many were sent."""
        if not columns or not columns[0]:
            return 0
        tdef = TABLES[table]
        self.client.insert(tdef.name, columns, column_names=tdef.column_names, column_oriented=True)
        return len(columns[0])
