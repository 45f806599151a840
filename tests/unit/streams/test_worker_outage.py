"""A broker that goes away: the worker neither commits past unacknowledged outputs nor dies."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP

from streams.commits import CommitUnavailableError
from streams.outputs import UndeliveredOutputError
from tests.unit.streams.test_worker_commits import TOPIC, MemoryProducer
from tests.unit.streams.test_worker_sink import FlakySink, batch, make


class QueueingProducer(MemoryProducer):
    """``queued`` records stay undelivered (the broker is away); ``failed`` ones are lost."""

    def __init__(self) -> None:
        super().__init__()
        self.queued = 0

    def flush(self, timeout: float = 0) -> int:
        self.flushes += 1
        return self.queued


def test_queued_outputs_hold_the_commit_and_the_worker_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    worker, commits = make(FlakySink())
    producer = QueueingProducer()
    worker.outputs.producer = producer  # type: ignore[assignment]
    t = [0.0]
    worker.broker_outage.clock = lambda: t[0]
    caplog.set_level("INFO", logger="envirostream.outage")
    producer.queued = 3
    asyncio.run(worker.on_readings(batch(range(3))))
    worker._last_commit = float("-inf")  # a commit is due: only the backoff holds it
    asyncio.run(worker.on_readings(batch(range(3, 5))))  # within the backoff: no wait at all
    assert commits == []  # the aggregates sent are not acknowledged: nothing committed
    assert producer.flushes == 1
    producer.queued = 0
    t[0] = 5.0
    asyncio.run(worker.flush_and_commit(force=True))
    assert commits[-1] == {TP(TOPIC, 0): 4}  # reading 4's window is open
    levels = [(r.levelname, r.getMessage()[:45]) for r in caplog.records]
    assert levels == [
        ("WARNING", "the Kafka broker is unreachable or refusing ("),
        ("INFO", "the Kafka broker is back after 5.0 s and 0 re"),
    ]


def test_a_refused_commit_is_taken_again_later() -> None:
    worker, commits = make(FlakySink())
    refuse = [True]

    async def commit(offsets: dict[TP, int]) -> None:
        if refuse[0]:
            msg = "coordinator not available"
            raise CommitUnavailableError(msg)
        commits.append(dict(offsets))

    worker.bind_commit(commit)
    t = [0.0]
    worker.broker_outage.clock = lambda: t[0]
    asyncio.run(worker.on_readings(batch(range(3))))
    assert commits == [] and worker.committed == {}
    assert not worker.broker_outage.up
    refuse[0] = False
    t[0] = 1.0
    asyncio.run(worker.flush_and_commit(force=True))
    assert commits == [{TP(TOPIC, 0): 2}]
    assert worker.broker_outage.up


def test_an_output_lost_for_good_still_stops_the_worker() -> None:
    worker, commits = make(FlakySink())
    producer = QueueingProducer()
    producer.failed = 1
    worker.outputs.producer = producer  # type: ignore[assignment]
    with pytest.raises(UndeliveredOutputError, match="1 failed"):
        asyncio.run(worker.on_readings(batch(range(3))))
    assert commits == []  # a restart replays from the last commit
