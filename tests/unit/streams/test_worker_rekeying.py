"""The worker moves misrouted readings to their device's partition and commits them only
after the broker acknowledged the move."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

from schemas import AvroCodec
from streams.readings import InputRecord
from streams.routing import REKEYED_HEADER, murmur2_partition
from tests.unit.streams.test_worker_commits import TOPIC, make_worker, reading


class SlowProducer:
    """Records what is sent; ``undelivered`` records are not acknowledged yet."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.undelivered = 0
        self.failed = 0
        self.last_error = None

    def send_batch(self, topic: str, keys: Any, values: Any, **kw: Any) -> None:
        self.calls.append({"topic": topic, "keys": list(keys), "values": list(values), **kw})

    def flush(self, timeout: float = 0) -> int:
        return self.undelivered


def device_on(partition: int) -> str:
    i = 0
    while murmur2_partition(f"m-{i}".encode(), 4) != partition:
        i += 1
    return f"m-{i}"


def test_a_misrouted_reading_is_moved_and_committed_only_once_acknowledged() -> None:
    worker, writer, _, commits = make_worker(sink_batch_rows=1)
    producer = SlowProducer()
    worker.outputs.producer = producer  # type: ignore[assignment]
    worker.processor.router.set_partitions(4)
    codec = AvroCodec()
    theirs = device_on(3)
    value = reading(codec, theirs, 1000)
    producer.undelivered = 1  # the broker has not acknowledged the moved copy yet
    asyncio.run(worker.on_readings([InputRecord(TOPIC, 0, 0, None, value)]))
    (moved,) = [c for c in producer.calls if c["topic"] == TOPIC]
    assert moved["keys"] == [theirs.encode()] and moved["values"] == [value]
    assert moved["partitions"] == [3]
    assert moved["headers"] == [[(REKEYED_HEADER, b"telemetry.readings/0/0")]]
    assert "readings" not in writer.rows  # stored by the owner, not here
    assert all(TP(TOPIC, 0) not in c for c in commits)  # not acknowledged: no commit
    producer.undelivered = 0
    worker.broker_outage.clock = lambda: float("inf")  # the retry backoff has passed
    asyncio.run(worker.commit())
    assert commits[-1][TP(TOPIC, 0)] == 1
