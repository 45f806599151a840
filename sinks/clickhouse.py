"""ClickHouse as a sink: the pipeline's tables written in batches through clickhouse-connect.

The first implementation of the sink contract (:class:`sinks.base.BatchingSink`). Its
tables and their columns come from the one DDL source, ``sinks/ddl.py``; :meth:`setup`
creates them (idempotent), :meth:`write` inserts one table's buffered rows, column-oriented,
naming the columns. Rows are idempotent by the tables' sorting keys (ReplacingMergeTree), so
a replay after a crash never changes what ``FINAL`` returns.

ClickHouse refuses an insert block that touches more partitions than its
``max_partitions_per_insert_block`` (100 by default; a user profile may forbid raising it)
with TOO_MANY_PARTS, and the tables are partitioned by month: a replay of ten years of
monthly rows is 120 partitions. :func:`split_by_partition` cuts a batch into blocks of at
most ``ENVIROSTREAM_SINK_MAX_PARTITIONS_PER_INSERT`` months, which works against every
server. If a later block fails, the earlier ones are written again on the retry and
collapse by the sorting key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC
from typing import Any

import numpy as np

from core.settings import Settings
from sinks.base import BatchingSink, SinkBatch, StoredWindows, WindowRef
from sinks.bind_chunks import bounded_chunks
from sinks.ddl import TABLES, codec_changes, column_additions, create_statements
from sinks.operator_ddl import ensure_operator_tables
from sinks.rollups import refresh_rollups, rollup_create_statements

__all__ = ["ClickHouseSink", "partition_months", "split_by_partition"]


def partition_months(values: Sequence[Any]) -> np.ndarray:
    """The partition of each value, ``toYYYYMM`` in UTC: epoch milliseconds or datetimes.

    >>> partition_months([0, 1_262_304_000_000]).tolist()  # 1970-01, 2010-01-01T00:00Z
    [197001, 201001]
    >>> from datetime import UTC, datetime
    >>> partition_months([datetime(2019, 12, 31, 23, 59, tzinfo=UTC)]).tolist()
    [201912]
    """
    if len(values) and not isinstance(values[0], int | float | np.integer | np.floating):
        values = [_epoch_ms(v) for v in values]
    months = np.asarray(values, dtype="int64").astype("datetime64[ms]").astype("datetime64[M]")
    n = months.astype("int64")  # months since 1970-01
    return (1970 + n // 12) * 100 + n % 12 + 1


def _epoch_ms(value: Any) -> int:
    if hasattr(value, "timestamp"):  # aware datetime (naive ones are UTC, as in the table)
        if value.tzinfo is None:
            return int(value.replace(tzinfo=UTC).timestamp() * 1000)
        return int(value.timestamp() * 1000)
    if value is None:
        return 0
    return int(value)


def split_by_partition(batch: SinkBatch, column: str, max_partitions: int) -> list[SinkBatch]:
    """``batch`` cut into blocks of rows of at most ``max_partitions`` months of ``column``.

    Months are taken in order; the rows of one month stay in one block, in their order.
    A batch within the limit is returned as it is (no copy).

    >>> b = SinkBatch("t", ("ts", "v"), [[0, 2_678_400_000, 5_356_800_000], [1, 2, 3]])
    >>> [blk.columns for blk in split_by_partition(b, "ts", 2)]  # Jan, Feb, Mar 1970
    [[[0, 2678400000], [1, 2]], [[5356800000], [3]]]
    """
    if max_partitions < 1:
        msg = f"max_partitions must be at least 1, got {max_partitions}"
        raise ValueError(msg)
    if batch.rows == 0:
        return [batch]
    months = partition_months(batch.column(column))
    distinct = np.unique(months)
    if len(distinct) <= max_partitions:
        return [batch]
    blocks = []
    for start in range(0, len(distinct), max_partitions):
        chosen = distinct[start : start + max_partitions]
        idx = np.flatnonzero(np.isin(months, chosen)).tolist()
        cols = [[col[i] for i in idx] for col in batch.columns]
        blocks.append(SinkBatch(batch.table, batch.column_names, cols))
    return blocks


# Every statistic of a window, from the stored readings of the windows named (bound).
_RECOMPUTE = """
SELECT tenant_id, device_id, capability,
       intDiv(toUnixTimestamp64Milli(ts), {w:Int64}) * {w:Int64} AS start,
       any(device_type), any(unit), count(), avg(value), min(value), max(value),
       stddevPopStable(value), argMin(value, (ts, sequence)), argMax(value, (ts, sequence)),
       toUnixTimestamp64Milli(min(ts)), toUnixTimestamp64Milli(max(ts))
FROM readings FINAL
WHERE ts >= fromUnixTimestamp64Milli({lo:Int64}) AND ts < fromUnixTimestamp64Milli({hi:Int64})
  AND %s
GROUP BY tenant_id, device_id, capability, start
"""
_REFS = (
    "(tenant_id, device_id, capability, start) "
    "IN {refs:Array(Tuple(String, String, String, Int64))}"
)
WHOLE_WINDOWS = 2
"""Refs spanning this many windows or fewer are recomputed for every series of the range
when they need more than one statement (a worker's first minute after a start rechecks a
window of every series: one read of the minute instead of one per piece of refs)."""
_FIELDS = (
    "tenant_id", "device_id", "capability", "window_start", "device_type", "unit",
    "count", "mean", "min", "max", "std", "first", "last", "first_ts", "last_ts",
)  # fmt: skip


def _ref_of(rec: dict[str, Any]) -> WindowRef:
    return (rec["tenant_id"], rec["device_id"], rec["capability"], rec["window_start"])


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
        """Create the tables and rollups if missing (the same DDL for chdb and a server),
        and give tables created by an older version the columns they lack (``ADD COLUMN IF
        NOT EXISTS``) and the codecs of this one (metadata only; a column's type is never
        changed). Then the operator tables (``sinks.operator_ddl``: API keys, assets, alert
        history)."""
        for statement in create_statements(self.settings) + rollup_create_statements(self.settings):
            self.client.command(statement)
        rows = self.client.query(
            "SELECT table, name, compression_codec FROM system.columns "
            "WHERE database = currentDatabase() AND table IN {tables:Array(String)}",
            parameters={"tables": list(TABLES)},
        ).result_rows
        current: dict[str, dict[str, str]] = {}
        for table, column, codec in rows:
            current.setdefault(table, {})[column] = codec
        for name, table in TABLES.items():
            have = current.get(name, {})
            for statement in column_additions(table, have) + codec_changes(table, have):
                self.client.command(statement)
        ensure_operator_tables(self.client)

    def recompute_windows(self, window_ms: int, refs: Sequence[WindowRef]) -> list[dict[str, Any]]:
        """Every statistic of the windows ``refs`` from the stored readings; one query per
        piece of at most ``sinks.bind_chunks.BIND_BUDGET`` bytes of refs (a gateway's flush
        can make thousands of windows late at once), or, when the refs need several pieces
        but span at most :data:`WHOLE_WINDOWS` windows, one query over every series of
        that range, keeping the rows of ``refs``."""
        pieces = list(bounded_chunks(sorted(refs)))
        if not pieces:
            return []
        lo, hi = min(r[3] for r in refs), max(r[3] for r in refs) + window_ms
        if len(pieces) > 1 and hi - lo <= WHOLE_WINDOWS * window_ms:
            wanted = set(refs)
            params: dict[str, Any] = {"w": window_ms, "lo": lo, "hi": hi}
            rows = self.client.query(_RECOMPUTE % "1", parameters=params).result_rows
            return [rec for rec in self._windows(rows, window_ms) if _ref_of(rec) in wanted]
        out = []
        for piece in pieces:
            params = {
                "w": window_ms,
                "lo": min(r[3] for r in piece),
                "hi": max(r[3] for r in piece) + window_ms,
                "refs": piece,
            }
            rows = self.client.query(_RECOMPUTE % _REFS, parameters=params).result_rows
            out.extend(self._windows(rows, window_ms))
        return out

    @staticmethod
    def _windows(rows: Iterable[Sequence[Any]], window_ms: int) -> list[dict[str, Any]]:
        out = []
        for row in rows:
            rec = dict(zip(_FIELDS, row, strict=True))
            rec["window_end"] = rec["window_start"] + window_ms
            out.append(rec)
        return out

    def write(self, batch: SinkBatch) -> None:
        """Insert ``batch``, one request per block of at most the configured partitions."""
        column = TABLES[batch.table].partition_column
        for block in split_by_partition(
            batch, column, self.settings.sink_max_partitions_per_insert
        ):
            self.client.insert(
                block.table,
                block.columns,
                column_names=list(block.column_names),
                column_oriented=True,
            )
            if block.table == AGGREGATES and self.settings.rollups_refresh:
                # After the insert: the rollups are recomputed from what is now stored. A
                # failure here fails the write, whose retry inserts (idempotent) and
                # recomputes again.
                refresh_rollups(self.client, _window_keys(block))
            if block is not batch:
                block.release()  # a copy: the driver's cycle must not keep it (SinkBatch)


AGGREGATES = "aggregates"


def _window_keys(block: SinkBatch) -> set[tuple[str, str, str, str, int]]:
    """(tenant, device, capability, window_size, window_start ms) of ``aggregates`` rows."""
    cols = [block.column(c) for c in ("tenant_id", "device_id", "capability", "window_size")]
    starts = [_epoch_ms(v) for v in block.column("window_start")]
    return set(zip(*cols, starts, strict=True))
