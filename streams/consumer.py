"""The input loop: our own aiokafka consumer, batches in, explicit commits out.

The input topics are read in batches by one consumer in the group ``ENVIROSTREAM_APP_ID``
(range assignment: partition *p* of every input topic lands on one worker), handed to the
worker by topic, and committed only through :meth:`PipelineWorker.commit`. Faust's stream
delivery is not used for them: measured here, an agent on ``take_events`` stalled for good
after 162,442 of 200,000 records (its buffer-full pause, faust-streaming #88), and Faust
commits on its own schedule (docs/design.md, "The worker process").
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from faust.types import TP

from core.settings import Settings
from streams.commits import CommitUnavailableError
from streams.intake import STORED_TOPICS
from streams.records import InputRecord
from streams.routing import is_rekeyed
from streams.worker import PipelineWorker
from topics import ALERTS_FEEDBACK, READINGS
from topics.kafka_config import aiokafka_kwargs

__all__ = ["COMMIT_TIMEOUT_SECONDS", "INPUT_TOPICS", "bounded_commit", "consume", "split_by_topic"]

log = logging.getLogger(__name__)

# What the worker's consumer group reads: the readings, operator feedback (keyed and
# partitioned like the readings) and every topic stored as it is.
INPUT_TOPICS = [READINGS, ALERTS_FEEDBACK, *(s.topic for s in STORED_TOPICS)]


def split_by_topic(batches: dict[Any, list[Any]]) -> dict[str, list[InputRecord]]:
    """Split one fetch by topic, each in partition-offset order."""
    by_topic: dict[str, list[InputRecord]] = {}
    for tp, messages in batches.items():
        src = (tp.topic, tp.partition)
        by_topic.setdefault(tp.topic, []).extend(
            InputRecord(m.topic, m.partition, m.offset, m.key, m.value, is_rekeyed(m.headers), src)
            for m in messages
        )
    return by_topic


COMMIT_TIMEOUT_SECONDS = 5.0
"""How long an offset commit may take. aiokafka retries a commit until the group's
coordinator answers, so with the broker away it would wait for the broker's return while the
worker's lock is held: no flush, no outage reported."""


async def bounded_commit(consumer: Any, offsets: dict[TP, int], timeout: float) -> None:
    """Commit ``offsets`` through ``consumer`` (an ``AIOKafkaConsumer``) within ``timeout``
    seconds; raises :class:`CommitUnavailableError` when the broker refuses or does not
    answer in time (the worker counts it as a broker outage and commits the same offsets
    later)."""
    request = {TopicPartition(tp.topic, tp.partition): o for tp, o in offsets.items()}
    try:
        await asyncio.wait_for(consumer.commit(request), timeout)
    except TimeoutError as exc:
        msg = f"offset commit not answered within {timeout:g} s"
        raise CommitUnavailableError(msg) from exc
    except KafkaError as exc:  # broker away or group rebalancing: try again later
        msg = f"offset commit failed: {exc!r}"
        raise CommitUnavailableError(msg) from exc


class _Rebalance(ConsumerRebalanceListener):
    """Drops the state of revoked partitions; the new owner replays from the commit."""

    def __init__(self, worker: Callable[[], PipelineWorker]) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._worker().release([TP(tp.topic, tp.partition) for tp in revoked])

    async def on_partitions_assigned(self, assigned: Any) -> None:
        # Restored by the consume loop before its next batch: records fetched while this
        # listener ran must not be handled first (they would re-send restored alerts).
        self._worker().assigned([tp.partition for tp in assigned if tp.topic == READINGS])


def _backpressure(consumer: AIOKafkaConsumer, w: PipelineWorker, paused: bool) -> bool:
    """Stop fetching while the sink holds too many rows (the store is down or slow); go on
    once they are stored. Returns whether input is paused now."""
    if w.sink_backlogged():
        consumer.pause(*consumer.assignment())  # also partitions assigned meanwhile
        w.hold_idle()
        if not paused:
            w.metrics.input_paused.set(1)
            log.info(
                "input paused: more than %d rows wait for the store "
                "(ENVIROSTREAM_SINK_MAX_BUFFERED_ROWS)",
                w.settings.sink_max_buffered_rows,
            )
        return True
    if paused:
        consumer.resume(*consumer.assignment())
        w.metrics.input_paused.set(0)
        log.info("input resumed: the buffered rows are stored")
    return False


async def consume(
    settings: Settings, worker: Callable[[], PipelineWorker], should_stop: Callable[[], bool]
) -> None:
    """Fetch input in batches and hand it to the worker until ``should_stop()``."""
    w = worker()
    consumer = AIOKafkaConsumer(
        **aiokafka_kwargs(settings),
        group_id=settings.app_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.worker_batch_size,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        session_timeout_ms=int(settings.session_timeout_seconds * 1000),
        heartbeat_interval_ms=int(min(3.0, settings.session_timeout_seconds / 3) * 1000),
        # Range: partition p of every input topic goes to one worker, so the feedback on a
        # device reaches the worker that owns its readings (same key, same p).
        partition_assignment_strategy=(RangePartitionAssignor,),
    )
    consumer.subscribe(INPUT_TOPICS, listener=_Rebalance(worker))

    async def commit(offsets: dict[TP, int]) -> None:
        await bounded_commit(consumer, offsets, COMMIT_TIMEOUT_SECONDS)

    w.bind_commit(commit)
    await consumer.start()
    timeout_ms = int(settings.worker_batch_seconds * 1000)
    paused = False
    try:
        while not should_stop():
            paused = _backpressure(consumer, w, paused)
            fetched = await consumer.getmany(
                timeout_ms=timeout_ms, max_records=settings.worker_batch_size
            )
            await w.restore_pending()
            # Readings on another partition than their device's move there (streams.routing).
            w.processor.router.set_partitions(len(consumer.partitions_for_topic(READINGS) or ()))
            for topic, records in split_by_topic(fetched).items():
                if topic == READINGS:
                    await w.on_readings(records)
                elif topic == ALERTS_FEEDBACK:
                    await w.on_feedback(records)
                else:
                    await w.on_sink_records(topic, records)
    finally:
        try:
            await w.stop()
        except Exception:
            log.exception("final detector checkpoint failed")
        await consumer.stop()
