"""Row buffers: column-wise accumulation, flush rules and pending offsets."""

from __future__ import annotations

import pytest

from core.settings import load_settings
from sinks.base import RowBuffer
from sinks.ddl import TABLES, create_statements


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_buffer_collects_columns_and_lowest_offset_per_source() -> None:
    clock = FakeClock()
    buf = RowBuffer("anomalies", TABLES["anomalies"].column_names, clock=clock)
    width = len(TABLES["anomalies"].columns)
    buf.extend([[1]] * width, ("t", 0), 10)
    buf.extend([[2, 3]] * width, ("t", 0), 7)
    buf.hold(("t", 1), 4)
    assert len(buf) == 3
    assert buf.pending_from == {("t", 0): 7, ("t", 1): 4}
    cols = buf.take()
    assert cols[0] == [1, 2, 3]
    assert len(buf) == 0 and buf.pending_from == {}


def test_flush_is_due_by_rows_or_by_age() -> None:
    clock = FakeClock()
    buf = RowBuffer("anomalies", TABLES["anomalies"].column_names, clock=clock)
    width = len(TABLES["anomalies"].columns)
    assert not buf.due(max_rows=2, max_seconds=1.0)
    buf.extend([[1]] * width, "s", 0)
    assert not buf.due(max_rows=2, max_seconds=1.0)
    clock.now += 1.0
    assert buf.due(max_rows=2, max_seconds=1.0)
    buf.take()
    buf.extend([[1, 2]] * width, "s", 0)
    assert buf.due(max_rows=2, max_seconds=60.0)


def test_rows_in_a_write_stay_held_and_come_back_first_if_it_fails() -> None:
    clock = FakeClock()
    buf = RowBuffer("anomalies", TABLES["anomalies"].column_names, clock=clock)
    width = len(TABLES["anomalies"].columns)
    buf.extend([[1, 2]] * width, ("t", 0), 10)
    cols = buf.begin()
    assert cols[0] == [1, 2] and len(buf) == 0 and buf.in_flight_rows == 2
    assert buf.in_flight == {("t", 0): 10} and buf.pending_from == {}
    with pytest.raises(RuntimeError, match="anomalies: a write of its rows is already in flight"):
        buf.begin()
    clock.now += 5.0
    buf.extend([[3]] * width, ("t", 0), 12)  # added while the write runs
    buf.extend([[4]] * width, ("t", 1), 3)
    buf.end(cols, ok=False)
    assert buf.columns[0] == [1, 2, 3, 4]  # the failed rows first, as read
    assert buf.pending_from == {("t", 0): 10, ("t", 1): 3}
    assert buf.in_flight == {} and buf.in_flight_rows == 0
    assert buf.since == 100.0  # as old as its oldest row: due by age at once
    assert buf.due(max_rows=100, max_seconds=5.0)

    cols = buf.begin()
    buf.end(cols, ok=True)
    assert len(buf) == 0 and buf.pending_from == {} and buf.in_flight == {}


def test_wrong_column_count_is_refused_with_the_table_name() -> None:
    buf = RowBuffer("readings", TABLES["readings"].column_names)
    with pytest.raises(ValueError, match="readings: expected 14 columns"):
        buf.extend([[1]], "s", 0)


def test_every_table_is_a_replacing_merge_tree_with_ttl() -> None:
    statements = create_statements(load_settings({"ENVIROSTREAM_READINGS_TTL_DAYS": "3"}))
    assert len(statements) == 4
    for sql in statements:
        assert "ReplacingMergeTree" in sql
        assert "TTL toDateTime(stored_at) + INTERVAL" in sql
    assert "INTERVAL 3 DAY" in statements[0]
    assert "ReplacingMergeTree(count)" in statements[1]
