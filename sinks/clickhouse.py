"""ClickHouse as a sink: the pipeline's tables written in batches through clickhouse-connect.

The first implementation of the sink contract (:class:`sinks.base.BatchingSink`). Its
tables and their columns come from the one DDL source, ``sinks/ddl.py``; :meth:`setup`
creates them (idempotent), :meth:`write` inserts one table's buffered rows in one request,
column-oriented, naming the columns. Rows are idempotent by the tables' sorting keys
(ReplacingMergeTree), so a replay after a crash never changes what ``FINAL`` returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from core.settings import Settings
from sinks.base import BatchingSink, SinkBatch, StoredWindows, WindowRef
from sinks.ddl import TABLES, create_statements

__all__ = ["ClickHouseSink"]


# Every statistic of a window, from the stored readings of the windows named (bound).
_RECOMPUTE = """
SELECT tenant_id, device_id, capability,
       intDiv(toUnixTimestamp64Milli(ts), {w:Int64}) * {w:Int64} AS start,
       any(device_type), any(unit), count(), avg(value), min(value), max(value),
       stddevPopStable(value), argMin(value, (ts, sequence)), argMax(value, (ts, sequence)),
       toUnixTimestamp64Milli(min(ts)), toUnixTimestamp64Milli(max(ts))
FROM readings FINAL
WHERE ts >= fromUnixTimestamp64Milli({lo:Int64}) AND ts < fromUnixTimestamp64Milli({hi:Int64})
  AND (tenant_id, device_id, capability, start)
      IN {refs:Array(Tuple(String, String, String, Int64))}
GROUP BY tenant_id, device_id, capability, start
"""
_FIELDS = (
    "tenant_id", "device_id", "capability", "window_start", "device_type", "unit",
    "count", "mean", "min", "max", "std", "first", "last", "first_ts", "last_ts",
)  # fmt: skip


class ClickHouseSink(BatchingSink, StoredWindows):
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

    def recompute_windows(self, window_ms: int, refs: Sequence[WindowRef]) -> list[dict[str, Any]]:
        if not refs:
            return []
        params = {
            "w": window_ms,
            "lo": min(r[3] for r in refs),
            "hi": max(r[3] for r in refs) + window_ms,
            "refs": [tuple(r) for r in refs],
        }
        rows = self.client.query(_RECOMPUTE, parameters=params).result_rows
        out = []
        for row in rows:
            rec = dict(zip(_FIELDS, row, strict=True))
            rec["window_end"] = rec["window_start"] + window_ms
            out.append(rec)
        return out

    def write(self, batch: SinkBatch) -> None:
        self.client.insert(
            batch.table,
            batch.columns,
            column_names=list(batch.column_names),
            column_oriented=True,
        )
