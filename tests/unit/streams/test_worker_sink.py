"""The worker against the sink contract only: offsets commit behind durable rows.

A fake sink decides when rows become durable (its write can fail, and its readings columns
come in another order than the processor builds them); the worker must never commit an
offset past a row the sink has not stored, whatever the sink is.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from core.metrics import PipelineMetrics
from core.settings import load_settings
from schemas import AvroCodec
from sinks.base import BatchingSink, SinkBatch
from streams.readings import READING_COLUMNS, InputRecord
from streams.worker import PipelineWorker
from tests.unit.streams.test_worker_commits import TOPIC, MemoryProducer, reading

CODEC = AvroCodec()


class FlakySink(BatchingSink):
    """Stores rows in memory; ``down`` makes every write fail. Readings columns reversed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(
            {
                "readings": tuple(reversed(READING_COLUMNS)),
                "aggregates": ("device_id", "window_end", "count"),
                "anomalies": ("device_id", "ts"),
                "alerts": ("alert_key", "last_seen", "state"),
            },
            clock,
        )
        self.down = False
        self.stored: dict[str, list[dict[str, Any]]] = {}

    def write(self, batch: SinkBatch) -> None:
        if self.down:
            msg = "sink unreachable"
            raise ConnectionError(msg)
        rows = [
            dict(zip(batch.column_names, r, strict=True)) for r in zip(*batch.columns, strict=True)
        ]
        self.stored.setdefault(batch.table, []).extend(rows)


def make(sink: BatchingSink) -> tuple[PipelineWorker, list[dict[TP, int]]]:
    settings = load_settings(
        {},
        window_seconds=1,
        allowed_lateness_seconds=0,
        sink_batch_rows=1,  # every batch flushes
        sink_batch_seconds=600,
        commit_interval_seconds=0.001,
        event_time_floor="1970-01-01",  # readings stamped near the epoch
        sink_pipelined=False,  # each asyncio.run is a loop of its own: writes end in the call
    )
    commits: list[dict[TP, int]] = []

    async def commit(offsets: dict[TP, int]) -> None:
        commits.append(dict(offsets))

    worker = PipelineWorker(
        settings,
        CODEC,
        sink,
        MemoryProducer(),  # type: ignore[arg-type]
        PipelineMetrics(CollectorRegistry()),
        commit=commit,
    )
    return worker, commits


def retune(worker: PipelineWorker, **settings: Any) -> None:
    """Change settings of a running worker (and of its store writes, which read them)."""
    worker.settings = worker.writes.settings = worker.settings.model_copy(update=settings)


def batch(offsets: range) -> list[InputRecord]:
    # One reading per second of event time: every reading closes the previous window.
    return [
        InputRecord(TOPIC, 0, i, b"d", reading(CODEC, "d", i * 1000, float(i))) for i in offsets
    ]


def test_commits_stay_behind_rows_the_sink_could_not_store() -> None:
    sink = FlakySink()
    worker, commits = make(sink)
    asyncio.run(worker.on_readings(batch(range(3))))
    # Windows [0,1) and [1,2) closed; reading 2 is in the open window: commit up to 2.
    assert commits[-1] == {TP(TOPIC, 0): 2}
    assert [r["reading_id"] for r in sink.stored["readings"]] == ["d@0", "d@1000", "d@2000"]
    assert sink.stored["readings"][1]["value"] == 1.0  # columns matched by name, not position

    sink.down = True
    asyncio.run(worker.on_readings(batch(range(3, 6))))  # the worker waits, it does not die
    asyncio.run(worker.commit())  # the batch may have come within the commit interval
    # Windows up to offset 5 closed, but rows 3..5 are not durable: nothing moves past 3.
    assert sink.pending_from((TOPIC, 0)) == 3
    # The commit goes on (offset 3 = "read from 3 next"), never past the first unstored row.
    assert max(c[TP(TOPIC, 0)] for c in commits) == 3
    assert (
        worker.metrics.registry.get_sample_value(
            "envirostream_sink_errors_total", {"table": "readings"}
        )
        == 1
    )

    sink.down = False
    asyncio.run(worker.flush_and_commit(force=True))
    assert commits[-1] == {TP(TOPIC, 0): 5}  # reading 5's window is still open
    assert len(sink.stored["readings"]) == 6


def test_a_sink_that_holds_rows_holds_the_commit_for_every_partition() -> None:
    sink = FlakySink()
    worker, _ = make(sink)
    retune(worker, sink_batch_rows=1_000)
    asyncio.run(worker.on_readings(batch(range(4))))
    other = [InputRecord(TOPIC, 1, 7, b"e", reading(CODEC, "e", 500))]
    worker._last_commit = float("-inf")  # the commit interval (1 ms) may not have passed yet
    asyncio.run(worker.on_readings(other))
    asyncio.run(worker.commit())  # the batch may have come within the commit interval
    assert worker.committed == {(TOPIC, 0): 0, (TOPIC, 1): 7}  # rows buffered, not stored
    asyncio.run(worker.flush_and_commit(force=True))
    assert worker.committed == {(TOPIC, 0): 3, (TOPIC, 1): 7}  # the open windows hold now


def sample(worker: PipelineWorker, name: str, labels: dict[str, str] | None = None) -> float:
    value = worker.metrics.registry.get_sample_value(name, labels or {})
    assert value is not None, name
    return value


def test_a_store_outage_is_retried_with_backoff_and_logged_once_each_way(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = FlakySink()
    worker, commits = make(sink)
    t = [100.0]
    worker.sink_outage.clock = lambda: t[0]
    attempts: list[float] = []
    write = sink.write

    def counted(b: SinkBatch) -> None:
        attempts.append(t[0])
        write(b)

    sink.write = counted  # type: ignore[method-assign,assignment]
    sink.down = True
    caplog.set_level("INFO", logger="envirostream.outage")
    asyncio.run(worker.on_readings(batch(range(3))))
    assert sample(worker, "envirostream_sink_up") == 0
    # Every 1/8 s for 40 s: attempts only when the backoff (0.5, 1, 2, ... 30 s) ran out.
    for _ in range(320):
        t[0] += 0.125
        asyncio.run(worker.tick())
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]  # the next (30 s) is after the 40 s
    # Nothing committed past rows never stored (offset 0 = "read from 0 next").
    assert max((c[TP(TOPIC, 0)] for c in commits), default=0) == 0
    assert sink.pending_from((TOPIC, 0)) == 0
    retries = sample(worker, "envirostream_sink_retries_total", {"table": "readings"})
    assert retries == len(attempts) - 1

    sink.down = False
    t[0] += 30.0
    asyncio.run(worker.tick())
    assert [r["reading_id"] for r in sink.stored["readings"]] == ["d@0", "d@1000", "d@2000"]
    assert sample(worker, "envirostream_sink_up") == 1
    assert commits[-1] == {TP(TOPIC, 0): 2}
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0][0] == "WARNING"
    assert "the store is unreachable or refusing (ConnectionError: sink unreachable)" in lines[0][1]
    # Down from t=100 to t=170; every attempt after the first failed one was a retry.
    assert lines[1] == ("INFO", f"the store is back after 70.0 s and {len(attempts) - 2} retries")


def test_the_worker_reports_a_backlog_above_the_buffer_limit() -> None:
    sink = FlakySink()
    worker, _ = make(sink)
    retune(worker, sink_max_buffered_rows=4)
    sink.down = True
    asyncio.run(worker.on_readings(batch(range(4))))
    assert not worker.sink_backlogged()  # 4 readings rows (+ aggregates not yet stored)
    asyncio.run(worker.on_readings(batch(range(4, 5))))
    assert worker.sink_backlogged()


def test_rows_due_between_batches_are_written_by_the_timer_not_the_next_batch() -> None:
    """The app's timer calls flush_due every 50 ms: rows whose batch age is reached are
    written then, not at the next housekeeping tick or input batch (the soak's p99)."""
    t = [0.0]
    sink = FlakySink(clock=lambda: t[0])
    worker, _ = make(sink)
    retune(worker, sink_batch_rows=1_000, sink_batch_seconds=1.0)
    asyncio.run(worker.on_readings(batch(range(3))))
    assert "readings" not in sink.stored
    t[0] = 0.9
    assert not asyncio.run(worker.flush_due())  # 0.9 s old: not due
    assert "readings" not in sink.stored
    t[0] = 1.0

    async def during_a_batch() -> bool:
        async with worker.lock:  # the batch being handled flushes itself
            return await worker.flush_due()

    assert not asyncio.run(during_a_batch())
    assert asyncio.run(worker.flush_due())
    assert [r["reading_id"] for r in sink.stored["readings"]] == ["d@0", "d@1000", "d@2000"]
