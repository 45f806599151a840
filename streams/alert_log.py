"""Read back the alert log: the latest ``Alert`` record per alert key in ``telemetry.alerts``.

The worker rebuilds its alert deduplication state from this when partitions are assigned
(after a start, a crash or a rebalance). Records of one key are on one partition (the key is
the Kafka key), so the last one by offset is the latest state change.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from schemas import AvroCodec, DecodeError

__all__ = ["fold_latest", "read_latest_alerts"]


def fold_latest(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The last record per ``alert_key`` (``records`` in log order).

    >>> fold_latest([{"alert_key": "k", "version": 1}, {"alert_key": "k", "version": 2}])
    {'k': {'alert_key': 'k', 'version': 2}}
    """
    latest: dict[str, dict[str, Any]] = {}
    for rec in records:
        latest[str(rec["alert_key"])] = rec
    return latest


def read_latest_alerts(
    bootstrap: str, topic: str, codec: AvroCodec, *, timeout: float = 30.0
) -> dict[str, dict[str, Any]]:
    """Read ``topic`` from the beginning to its current end; records that do not decode
    as ``Alert`` are skipped (the topic sink dead-letters them)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "envirostream-alert-log-reader",  # never subscribes nor commits
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            return {}
        ends: dict[int, int] = {}
        for p in sorted(tmeta.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=timeout, cached=False
            )
            if high > low:
                ends[p] = high
        if not ends:
            return {}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        values: list[bytes] = []
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
                    values.append(m.value() or b"")
                if off >= ends[p] - 1:
                    done.add(p)
        decoded = codec.decode_batch("Alert", values)
        return fold_latest([d for d in decoded if not isinstance(d, DecodeError)])
    finally:
        consumer.close()
