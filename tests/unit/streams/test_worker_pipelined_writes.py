"""The store written in the background (``ENVIROSTREAM_SINK_PIPELINED``, the default).

One event loop runs the whole day, as in the worker: a round of inserts is in flight while
more batches come in. The sink's write blocks on an event the test releases, so "in
flight" is a state the test holds, not a race it hopes to win. What must hold: input goes
on meanwhile; no offset is committed past a row being written, nor past a window whose
correction waits for it; a failed write puts its rows back before the newer ones; a forced
flush and a stop wait for the round.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from sinks.base import SinkBatch, StoredWindows, WindowRef
from streams.readings import LateWindow
from streams.worker import PipelineWorker
from tests.unit.streams.test_worker_commits import TOPIC, MemoryProducer
from tests.unit.streams.test_worker_sink import FlakySink, batch, make, retune, sample


class GatedSink(FlakySink):
    """A :class:`FlakySink` whose writes wait for :attr:`gate` (set: writes go through)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.started = threading.Event()  # a write is waiting at the gate
        self.writes: list[tuple[str, int]] = []  # (table, rows) of every write attempted

    def write(self, b: SinkBatch) -> None:
        self.writes.append((b.table, b.rows))
        self.started.set()
        assert self.gate.wait(10), "the test never opened the gate"
        super().write(b)


def pipelined(sink: FlakySink) -> tuple[PipelineWorker, list[dict[TP, int]]]:
    worker, commits = make(sink)
    retune(worker, sink_pipelined=True)
    return worker, commits


def ids(sink: FlakySink) -> list[str]:
    return [r["reading_id"] for r in sink.stored.get("readings", [])]


async def write_started(sink: GatedSink) -> None:
    assert await asyncio.to_thread(sink.started.wait, 5), "no write started"
    sink.started.clear()


def test_input_goes_on_while_rows_are_written_and_commits_stay_behind_them() -> None:
    sink = GatedSink()
    worker, commits = pipelined(sink)

    async def day() -> None:
        await worker.on_readings(batch(range(3)))
        await write_started(sink)  # rows 0..2 in flight, the gate closed
        assert worker.writes.writing()
        # The next batch is handled while the write waits (it would hang here otherwise).
        await asyncio.wait_for(worker.on_readings(batch(range(3, 6))), 5)
        assert ids(sink) == []
        assert sink.pending_from((TOPIC, 0)) == 0  # in flight: still held
        worker._last_commit = float("-inf")
        await worker.commit()
        assert max(c[TP(TOPIC, 0)] for c in commits) == 0
        assert sink.buffered("readings") == 6  # 3 in flight + 3 waiting (the backlog bound)

        sink.gate.set()
        await worker.writes.settle(5)
        assert ids(sink) == ["d@0", "d@1000", "d@2000"]
        assert sink.pending_from((TOPIC, 0)) == 3  # rows 3..5 wait for the next round
        await worker.flush_and_commit(force=True)
        assert ids(sink)[3:] == ["d@3000", "d@4000", "d@5000"]
        assert commits[-1] == {TP(TOPIC, 0): 5}  # reading 5's window is still open

    asyncio.run(day())
    assert [t for t, _ in sink.writes].count("readings") == 2  # one write per round


def test_a_failed_write_puts_its_rows_back_before_the_newer_ones() -> None:
    sink = GatedSink()
    worker, commits = pipelined(sink)

    async def day() -> None:
        sink.down = True
        await worker.on_readings(batch(range(3)))
        await write_started(sink)
        await worker.on_readings(batch(range(3, 5)))  # added while the write is in flight
        sink.gate.set()
        await worker.writes.settle(5)  # the write failed: the store is in its backoff
        assert worker.sink_outage.up is False
        assert sink.pending_from((TOPIC, 0)) == 0
        worker._last_commit = float("-inf")
        await worker.commit()
        assert max(c[TP(TOPIC, 0)] for c in commits) == 0
        sink.down = False
        await worker.flush_and_commit(force=True)

    asyncio.run(day())
    # Every row once, the rows of the failed write first, as read.
    assert ids(sink) == [f"d@{i * 1000}" for i in range(5)]
    assert commits[-1] == {TP(TOPIC, 0): 4}


def test_a_forced_flush_and_a_stop_wait_for_the_round_in_flight() -> None:
    sink = GatedSink()
    worker, _ = pipelined(sink)
    order: list[str] = []

    async def day() -> None:
        await worker.on_readings(batch(range(3)))
        await write_started(sink)
        forced = asyncio.create_task(worker.flush_and_commit(force=True))
        await asyncio.sleep(0.2)
        assert not forced.done()  # waits for the write at the gate
        order.append("gate")
        sink.gate.set()
        await asyncio.wait_for(forced, 5)
        order.append("forced")
        assert ids(sink) == ["d@0", "d@1000", "d@2000"]

        sink.gate.clear()
        await worker.on_readings(batch(range(3, 4)))
        await write_started(sink)
        stop = asyncio.create_task(worker.stop())
        await asyncio.sleep(0.2)
        assert not stop.done()
        sink.gate.set()
        await asyncio.wait_for(stop, 5)
        assert not worker.writes.writing()

    asyncio.run(day())
    assert order == ["gate", "forced"]
    assert "d@3000" in ids(sink)


class RecomputingSink(GatedSink, StoredWindows):
    """A gated sink that recomputes windows: records the refs, returns no statistics."""

    def __init__(self) -> None:
        super().__init__()
        self.corrected: list[WindowRef] = []

    def recompute_windows(self, window_ms: int, refs: Sequence[WindowRef]) -> list[dict[str, Any]]:
        self.corrected.extend(refs)
        return []


def test_windows_to_correct_hold_the_commit_until_their_correction_is_sent() -> None:
    sink = RecomputingSink()
    worker, commits = pipelined(sink)
    # A late reading at offset 1 changed a window already emitted: offsets from 1 are held.
    worker.corrections.add([LateWindow((TOPIC, 0), 1, "default", "d", "VIBRATION", 0)])

    async def day() -> None:
        await worker.on_readings(batch(range(3, 6)))
        await write_started(sink)  # the readings' write, the correction taken with it
        assert worker.corrections.pending == 0
        assert worker.corrections.hold((TOPIC, 0)) == 1  # taken, not yet sent: held
        worker._last_commit = float("-inf")
        await worker.commit()
        assert max(c[TP(TOPIC, 0)] for c in commits) <= 1
        sink.gate.set()
        await worker.writes.settle(5)
        assert worker.corrections.hold((TOPIC, 0)) is None  # sent: released

    asyncio.run(day())
    # (and the device's first window, rechecked: a predecessor may have stored part of it)
    assert sorted(sink.corrected) == [("default", "d", "VIBRATION", t) for t in (0, 3000)]


class Row:
    """A stored value that can be watched with a weak reference."""


class CyclicSink(FlakySink):
    """Keeps what it was handed in a reference cycle, as clickhouse-connect's
    ``InsertContext`` does (it holds a bound method of itself)."""

    def write(self, b: SinkBatch) -> None:
        context = SimpleNamespace(data=b.columns)
        context.me = context


def written_row_outlives_a_round(worker: PipelineWorker, sink: FlakySink, table: str) -> bool:
    """Buffer one row of ``table`` holding a watched object, run one round of writes with
    the collector off (as for rows promoted past the young collections while the worker
    went on) and tell whether anything still holds the object."""
    row = Row()
    watched = weakref.ref(row)
    columns = [[row] if i == 0 else [0] for i, _ in enumerate(sink.column_names(table))]
    sink.add(table, columns, (TOPIC, 0), 3)
    del row, columns

    async def write() -> None:
        await worker.writes.flush(0.0, force=False)
        await worker.writes.settle(5)

    gc.disable()
    try:
        asyncio.run(write())
        return watched() is not None
    finally:
        gc.enable()


def test_rows_written_are_not_kept_for_a_full_collection_by_the_drivers_cycles() -> None:
    sink = CyclicSink()
    worker, _ = pipelined(sink)
    assert not written_row_outlives_a_round(worker, sink, "anomalies")


class GatedAckProducer(MemoryProducer):
    """``flush`` acknowledges what was sent when it was called (as a broker would), then
    waits for :attr:`release`."""

    def __init__(self) -> None:
        super().__init__()
        self.acked = 0  # records acknowledged: the first ``acked`` of ``sent``
        self.waiting = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def flush(self, timeout: float = 0) -> int:
        acked = len(self.sent)
        self.waiting.set()
        assert self.release.wait(10), "the test never released the acknowledgement"
        self.acked = max(self.acked, acked)
        return 0  # the queue was empty when the round sent more


class StatsSink(RecomputingSink):
    """Recomputes every window asked for into a statistics row (a correction to send)."""

    def recompute_windows(self, window_ms: int, refs: Sequence[WindowRef]) -> list[dict[str, Any]]:
        super().recompute_windows(window_ms, refs)
        stats = dict.fromkeys(("mean", "min", "max", "std", "first", "last"), 1.0)
        return [
            {"tenant_id": t, "device_id": d, "capability": c, "window_start": start,
             "window_end": start + window_ms, "device_type": "MACHINE", "unit": "mm/s",
             "count": 2, "first_ts": start, "last_ts": start, **stats}
            for t, d, c, start in refs
        ]  # fmt: skip


def test_a_correction_sent_during_the_commits_wait_for_acks_holds_that_commit() -> None:
    """The commit takes its offsets before it waits for the outputs' acknowledgement: a
    round that sends a correction meanwhile must not let the commit pass the late reading
    whose correction the broker has not acknowledged."""
    sink = StatsSink()
    worker, commits = pipelined(sink)
    producer = GatedAckProducer()
    worker.outputs.producer = producer  # type: ignore[assignment]
    worker.corrections.add([LateWindow((TOPIC, 0), 1, "default", "d", "VIBRATION", 0)])

    async def day() -> None:
        await worker.on_readings(batch(range(3, 6)))
        await write_started(sink)
        producer.release.clear()
        producer.waiting.clear()
        worker._last_commit = float("-inf")
        commit = asyncio.create_task(worker.commit())
        assert await asyncio.to_thread(producer.waiting.wait, 5)  # the commit waits for acks
        sink.gate.set()  # meanwhile the round stores the rows and sends the correction
        await worker.writes.settle(5)
        producer.release.set()
        await asyncio.wait_for(commit, 5)

    asyncio.run(day())
    sent = [i for i, (topic, _) in enumerate(producer.sent) if topic.endswith("aggregates")]
    unacked = [i for i in sent if i >= producer.acked]
    assert unacked, "the test must send a correction the commit's wait did not acknowledge"
    assert max(c[TP(TOPIC, 0)] for c in commits) <= 1


def test_a_fault_in_the_round_is_raised_once_and_a_stop_still_checkpoints(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = StatsSink()
    sink.gate.set()
    worker, _ = pipelined(sink)

    def broken(stats: Any) -> list[dict[str, Any]]:
        raise RuntimeError("encoder broke")

    worker.corrections.records = broken  # type: ignore[method-assign]
    worker.corrections.add([LateWindow((TOPIC, 0), 1, "default", "d", "VIBRATION", 0)])
    checkpoints: list[Any] = []
    checkpoint = worker.checkpoints.checkpoint

    async def counted(*args: Any, **kwargs: Any) -> Any:
        checkpoints.append(args)
        return await checkpoint(*args, **kwargs)

    worker.checkpoints.checkpoint = counted  # type: ignore[method-assign]

    async def day() -> None:
        await worker.on_readings(batch(range(3, 6)))
        for _ in range(500):
            if not worker.writes.writing():
                break
            await asyncio.sleep(0.01)
        assert worker.corrections.hold((TOPIC, 0)) == 1  # not sent: still held
        await worker.stop()  # the fault is logged; the checkpoint still goes out
        assert not worker.writes.writing()
        await worker.writes.settle(1)  # raised once, not again

    caplog.set_level("ERROR", logger="streams.worker")
    asyncio.run(day())
    assert checkpoints
    assert "the store writes in the background failed" in caplog.text
    assert "encoder broke" in caplog.text


class FailingRecomputeSink(CyclicSink, StoredWindows):
    """Stores rows (in a cycle, as the driver does) but cannot recompute windows."""

    def recompute_windows(self, window_ms: int, refs: Sequence[WindowRef]) -> list[dict[str, Any]]:
        raise ConnectionError("store went away between the insert and the query")


def test_rows_stored_before_a_failed_correction_are_counted_and_released() -> None:
    sink = FailingRecomputeSink()
    worker, _ = pipelined(sink)
    worker.corrections.add([LateWindow((TOPIC, 0), 1, "default", "d", "VIBRATION", 0)])
    assert not written_row_outlives_a_round(worker, sink, "readings")
    stored = sample(worker, "envirostream_sink_rows_total", {"table": "readings"})
    assert stored == 1  # the insert succeeded: its row is counted
    assert worker.corrections.pending == 1  # the window waits for the next round
    assert sink.pending_from((TOPIC, 0)) is None  # the row itself is not written again


class SlowTableSink(FlakySink):
    """Writes of :attr:`slow` wait for :attr:`gate`, as the minute's aggregates wait for
    their insert and rollup refresh; the other tables' writes go straight through."""

    def __init__(self, slow: str) -> None:
        super().__init__()
        self.slow = slow
        self.gate = threading.Event()
        self.started = threading.Event()

    def write(self, b: SinkBatch) -> None:
        if b.table == self.slow:
            self.started.set()
            assert self.gate.wait(10), "the test never opened the gate"
        super().write(b)


def test_readings_are_written_while_the_aggregates_round_is_still_running() -> None:
    sink = SlowTableSink("aggregates")
    worker, commits = pipelined(sink)

    async def day() -> None:
        sink.add("aggregates", [["d"], [60_000], [3]], (TOPIC, 0), 0)
        await worker.writes.flush(0.0, force=False)
        assert await asyncio.to_thread(sink.started.wait, 5), "no aggregates write started"
        assert worker.writes.writing()
        # A tick's readings come in: their round starts and ends beside the slow one.
        await worker.on_readings(batch(range(3)))
        for _ in range(500):
            if ids(sink) == ["d@0", "d@1000", "d@2000"]:
                break
            await asyncio.sleep(0.01)
        assert ids(sink) == ["d@0", "d@1000", "d@2000"]
        assert "aggregates" not in sink.stored
        # The aggregate row still holds offset 0 of the input: no commit passes it.
        assert sink.pending_from((TOPIC, 0)) == 0
        worker._last_commit = float("-inf")
        await worker.commit()
        assert all(c.get(TP(TOPIC, 0), 0) == 0 for c in commits)
        assert not worker.writes.startable()  # nothing due in a free lane

        sink.gate.set()
        await worker.writes.settle(5)
        assert sink.stored["aggregates"] == [{"device_id": "d", "window_end": 60_000, "count": 3}]
        assert sink.pending_from((TOPIC, 0)) is None
        await worker.flush_and_commit(force=True)
        assert commits[-1] == {TP(TOPIC, 0): 2}  # reading 2's window is still open

    asyncio.run(day())


def test_a_table_is_never_written_by_two_rounds_at_once() -> None:
    sink = SlowTableSink("readings")
    worker, _ = pipelined(sink)

    async def day() -> None:
        await worker.on_readings(batch(range(2)))
        assert await asyncio.to_thread(sink.started.wait, 5), "no readings write started"
        await worker.on_readings(batch(range(2, 4)))  # due too, but its lane is busy
        assert sink.buffered("readings") == 4  # 2 in flight + 2 waiting
        assert not worker.writes.startable()
        sink.gate.set()
        await worker.writes.settle(5)
        assert ids(sink) == ["d@0", "d@1000"]
        await worker.flush_and_commit(force=True)
        assert ids(sink) == [f"d@{i * 1000}" for i in range(4)]

    asyncio.run(day())
