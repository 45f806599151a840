"""Read back the worker's logs when partitions are assigned (after a start, crash, rebalance).

* the alert log: the latest ``Alert`` record per alert key in ``telemetry.alerts``, from
  which the alert deduplication state is rebuilt. Records of one key are on one partition
  (the key is the Kafka key), so the last one by offset is the latest state change;
* the detector-state changelog (compacted): the latest checkpoint per device.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from schemas import AvroCodec, DecodeError
from topics.kafka_config import KafkaTarget, librdkafka_config

__all__ = ["fold_latest", "read_latest_alerts", "read_latest_state", "read_log"]


def fold_latest(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record per ``alert_key`` (``records`` in log order).

    >>> fold_latest([{"alert_key": "k", "version": 1}, {"alert_key": "k", "version": 2}])
    {'k': {'alert_key': 'k', 'version': 2}}
    """
    latest: dict[str, dict[str, Any]] = {}
    for rec in records:
        latest[str(rec["alert_key"])] = rec
    return latest


def read_log(
    kafka: KafkaTarget,
    topic: str,
    *,
    partitions: Iterable[int] | None = None,
    timeout: float = 30.0,
) -> list[tuple[bytes | None, bytes | None]]:
    """Every ``(key, value)`` of ``topic`` (or of ``partitions`` of it) from the beginning to
    its current end, in log order per partition. A missing topic reads as empty."""
    consumer = Consumer(
        {
            **librdkafka_config(kafka),
            "group.id": "envirostream-log-reader",  # never subscribes nor commits
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            return []
        wanted = sorted(tmeta.partitions if partitions is None else set(partitions))
        ends: dict[int, int] = {}
        for p in wanted:
            if p not in tmeta.partitions:
                continue
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=timeout, cached=False
            )
            if high > low:
                ends[p] = high
        if not ends:
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        records: list[tuple[bytes | None, bytes | None]] = []
        done: set[int] = set()
        deadline = time.monotonic() + timeout
        while len(done) < len(ends):
            if time.monotonic() > deadline:
                msg = f"reading {topic} back took longer than {timeout}s"
                raise TimeoutError(msg)
            for m in consumer.consume(num_messages=10_000, timeout=0.5):
                if m.error() is not None:
                    raise KafkaException(m.error())
                p, off = m.partition(), m.offset()
                if p is None or off is None or p in done:
                    continue
                if off < ends[p]:
                    records.append((m.key(), m.value()))
                if off >= ends[p] - 1:
                    done.add(p)
        return records
    finally:
        consumer.close()


def read_latest_alerts(
    kafka: KafkaTarget, topic: str, codec: AvroCodec, *, timeout: float = 30.0
) -> dict[str, dict[str, Any]]:
    """The latest ``Alert`` per key in ``topic``; records that do not decode as ``Alert`` are
    skipped (the topic sink dead-letters them)."""
    values = [v or b"" for _, v in read_log(kafka, topic, timeout=timeout)]
    decoded = codec.decode_batch("Alert", values)
    return fold_latest([d for d in decoded if not isinstance(d, DecodeError)])


def read_latest_state(
    kafka: KafkaTarget, topic: str, partitions: Iterable[int], *, timeout: float = 30.0
) -> dict[bytes, bytes]:
    """The latest value per key of a compacted changelog's ``partitions`` (tombstones drop
    the key)."""
    latest: dict[bytes, bytes] = {}
    for key, value in read_log(kafka, topic, partitions=partitions, timeout=timeout):
        if key is None:
            continue
        if value is None:
            latest.pop(key, None)
        else:
            latest[key] = value
    return latest
