"""Insert blocks within ClickHouse's partition limit: a batch over many months is split."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.settings import load_settings
from sinks.base import SinkBatch
from sinks.clickhouse import ClickHouseSink, partition_months, split_by_partition
from sinks.ddl import TABLES


def monthly_ms(n: int, start_year: int = 2010) -> list[int]:
    """The 15th, 12:00 UTC, of ``n`` consecutive months from January of ``start_year``."""
    out = []
    for i in range(n):
        dt = datetime(start_year + i // 12, i % 12 + 1, 15, 12, tzinfo=UTC)
        out.append(int(dt.timestamp() * 1000))
    return out


def yyyymm(ms: int) -> int:
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.year * 100 + dt.month


class RecordingClient:
    def __init__(self, max_partitions: int) -> None:
        self.max_partitions = max_partitions
        self.inserts: list[tuple[str, list[list[Any]], list[str]]] = []
        self.commands: list[dict[str, Any]] = []  # the parameters of every statement

    def command(self, sql: str, parameters: dict[str, Any]) -> None:
        self.commands.append(dict(parameters))

    def insert(self, table: str, columns: list[list[Any]], **kw: Any) -> None:
        ts = columns[kw["column_names"].index(TABLES[table].partition_column)]
        if len({yyyymm(t) for t in ts}) > self.max_partitions:
            msg = "TOO_MANY_PARTS"
            raise RuntimeError(msg)
        assert kw["column_oriented"] is True
        # a copy: the sink empties a block it cut once the block is stored
        self.inserts.append((table, [list(c) for c in columns], kw["column_names"]))


def test_month_boundaries_are_utc() -> None:
    edges = [
        datetime(2019, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        datetime(2020, 1, 1, tzinfo=UTC),
        datetime(1999, 2, 28, 23, 0, tzinfo=UTC),
    ]
    ms = [int(e.timestamp() * 1000) for e in edges]
    assert partition_months(ms).tolist() == [201912, 202001, 199902]
    assert partition_months(edges).tolist() == [201912, 202001, 199902]


def test_ten_years_of_monthly_rows_become_blocks_of_at_most_100_months() -> None:
    ts = monthly_ms(120)[::-1]  # newest first: the split must not rely on order
    batch = SinkBatch("readings", ("ts", "v"), [ts, list(range(120))])
    blocks = split_by_partition(batch, "ts", 100)
    assert [b.rows for b in blocks] == [100, 20]
    for b in blocks:
        assert len({yyyymm(t) for t in b.column("ts")}) <= 100
    stored = sorted((t, v) for b in blocks for t, v in zip(b.columns[0], b.columns[1], strict=True))
    assert stored == sorted(zip(ts, range(120), strict=True))  # every row once, with its value


def test_rows_of_one_month_stay_together_in_order() -> None:
    jan, feb, mar = monthly_ms(3)
    ts = [jan, mar, jan + 1, feb, mar + 1, jan + 2]
    batch = SinkBatch("t", ("ts", "v"), [ts, ["a", "b", "c", "d", "e", "f"]])
    blocks = split_by_partition(batch, "ts", 1)
    assert [b.column("v") for b in blocks] == [["a", "c", "f"], ["d"], ["b", "e"]]


def test_a_batch_within_the_limit_is_one_block() -> None:
    batch = SinkBatch("t", ("ts",), [monthly_ms(12)])
    assert split_by_partition(batch, "ts", 12) == [batch]
    with pytest.raises(ValueError, match="at least 1, got 0"):
        split_by_partition(batch, "ts", 0)


def test_the_sink_stores_a_block_spanning_years_in_inserts_the_server_accepts() -> None:
    settings = load_settings({}, sink_max_partitions_per_insert=100)
    client = RecordingClient(max_partitions=100)
    sink = ClickHouseSink(client, settings, clock=lambda: 0.0)
    names = sink.column_names("readings")
    ts = monthly_ms(120)
    columns: list[list[Any]] = [[] for _ in names]
    for i, t in enumerate(ts):
        row = {"ts": t, "reading_id": f"r{i}", "value": float(i)}
        for c, name in enumerate(names):
            columns[c].append(row.get(name, ""))
    sink.add("readings", columns, ("telemetry.readings", 0), first_offset=0)
    sink.flush("readings")
    assert len(client.inserts) == 2
    ids = [i for _, cols, n in client.inserts for i in cols[n.index("reading_id")]]
    assert sorted(ids) == sorted(f"r{i}" for i in range(120))
    assert sink.pending_from(("telemetry.readings", 0)) is None


def test_windows_stored_in_several_inserts_refresh_the_rollups_of_every_block() -> None:
    settings = load_settings({}, sink_max_partitions_per_insert=1)
    client = RecordingClient(max_partitions=1)
    sink = ClickHouseSink(client, settings, clock=lambda: 0.0)
    names = sink.column_names("aggregates")
    starts = monthly_ms(3)  # three months: three inserts
    columns: list[list[Any]] = [[] for _ in names]
    for start in starts:
        row = {"window_start": start, "window_end": start + 60_000, "window_size": "1m"}
        for c, name in enumerate(names):
            columns[c].append(row.get(name, "d" if name.endswith("_id") else 0))
    sink.add("aggregates", columns, ("telemetry.aggregates", 0), first_offset=0)
    sink.flush("aggregates")
    assert len(client.inserts) == 3
    for start in starts:  # each window's hour and day are recomputed
        covering = [p for p in client.commands if p["lo"] <= start < p["hi"]]
        assert {p["label"] for p in covering} == {"1h", "1d"}, start
