"""ClickHouse as a sink: the pipeline's tables written in batches through clickhouse-connect.

The first implementation of the sink contract (:class:`sinks.base.BatchingSink`). Its
tables and their columns come from the one DDL source, ``sinks/ddl.py``; :meth:`setup`
creates them (idempotent), :meth:`write` inserts one table's buffered rows in one request,
column-oriented, naming the columns. Rows are idempotent by the tables' sorting keys
(ReplacingMergeTree), so a replay after a crash never changes what ``FINAL`` returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core.settings import Settings
from sinks.base import BatchingSink, SinkBatch
from sinks.ddl import TABLES, create_statements

__all__ = ["ClickHouseSink"]


class ClickHouseSink(BatchingSink):
    """The ``readings``, ``aggregates``, ``anomalies`` and ``alerts`` tables in ClickHouse
    (the embedded store or a server: ``client`` comes from ``sinks.client.get_client``)."""

    def __init__(
        self, client: Any, settings: Settings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__({t.name: t.column_names for t in TABLES.values()}, clock)
        self.client = client
        self.settings = settings

    def setup(self) -> None:
        """Create the tables if missing (the same DDL for chdb and a server)."""
        for statement in create_statements(self.settings):
            self.client.command(statement)

    def write(self, batch: SinkBatch) -> None:
        self.client.insert(
            batch.table,
            batch.columns,
            column_names=list(batch.column_names),
            column_oriented=True,
        )
