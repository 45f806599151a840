"""The sink contract: rows buffered per table and partition, durable only after write."""

from __future__ import annotations

import pytest

from sinks.base import BatchingSink, SinkBatch

SRC = ("telemetry.readings", 0)


class ListSink(BatchingSink):
    def __init__(self, fail: bool = False) -> None:
        super().__init__({"t": ("ts", "v"), "u": ("x",)}, clock=lambda: 0.0)
        self.fail = fail
        self.batches: list[SinkBatch] = []

    def write(self, batch: SinkBatch) -> None:
        if self.fail:
            msg = "store down"
            raise ConnectionError(msg)
        self.batches.append(batch)


def test_pending_is_the_lowest_unwritten_offset_over_every_table() -> None:
    sink = ListSink()
    sink.add("t", [[1], [0.5]], SRC, first_offset=10)
    sink.add("u", [["a"]], SRC, first_offset=4)
    sink.hold("t", ("telemetry.readings", 1), 7)
    assert sink.pending_from(SRC) == 4
    sink.flush("u")
    assert sink.pending_from(SRC) == 10
    assert sink.pending_from(("telemetry.readings", 1)) == 7
    sink.flush("t")
    assert sink.pending_from(SRC) is None
    assert [(b.table, b.rows) for b in sink.batches] == [("u", 1), ("t", 1)]
    assert sink.batches[1].column("v") == [0.5]


def test_a_failed_write_keeps_the_rows_and_the_offsets_they_hold() -> None:
    sink = ListSink(fail=True)
    sink.add("t", [[1, 2], [0.5, 0.6]], SRC, first_offset=3)
    with pytest.raises(ConnectionError):
        sink.flush("t")
    assert sink.pending_from(SRC) == 3 and sink.buffered("t") == 2
    sink.fail = False
    assert sink.flush("t").rows == 2
    assert sink.pending_from(SRC) is None and sink.buffered("t") == 0


def test_due_tables_by_rows_and_forget_releases_offsets() -> None:
    sink = ListSink()
    sink.add("t", [[1, 2], [0.5, 0.6]], SRC, first_offset=0)
    assert sink.due(max_rows=2, max_seconds=60) == ["t"]
    assert sink.due(max_rows=3, max_seconds=60) == []
    sink.forget([SRC])
    assert sink.pending_from(SRC) is None


def test_unknown_table_names_the_sink_and_its_tables() -> None:
    with pytest.raises(KeyError, match=r"ListSink stores no table 'x'; it has \['t', 'u'\]"):
        ListSink().add("x", [[1]], SRC, 0)


def test_rows_handed_to_a_write_hold_their_offsets_until_it_ends() -> None:
    sink = ListSink()
    sink.add("t", [[1], [0.5]], SRC, first_offset=10)
    batch = sink.begin_flush("t")  # the write runs (in a thread) ...
    sink.add("t", [[2], [0.7]], SRC, first_offset=11)  # ... while rows come in
    assert sink.pending_from(SRC) == 10 and sink.buffered("t") == 2
    sink.end_flush(batch, ok=True)
    assert sink.pending_from(SRC) == 11 and sink.buffered("t") == 1
    batch = sink.begin_flush("t")
    sink.forget([SRC])  # revoked meanwhile: its offsets are no longer held
    assert sink.pending_from(SRC) is None
    sink.end_flush(batch, ok=False)  # the rows still wait to be written (replays dedupe)
    assert sink.buffered("t") == 1 and sink.pending_from(SRC) is None
