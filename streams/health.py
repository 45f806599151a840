"""Health figures the worker samples in its housekeeping: consumer lag and silent devices.

``ConsumerLagProbe`` reads the broker's offsets (log end minus the group's committed
offset), so the lag is what Kafka says, not an estimate. ``LastSeen`` is a pure per-device
last-seen map whose only output is two counts: devices stay out of Prometheus labels.
``sample_health`` sets the gauges from both.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Hashable, Iterable, Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

from core.metrics import PipelineMetrics
from topics.kafka_config import KafkaTarget, librdkafka_config

__all__ = ["ConsumerLagProbe", "LastSeen", "sample_health"]

log = logging.getLogger(__name__)


class LastSeen:
    """When each device was last heard from, per input partition (so a rebalance drops
    the devices another worker now owns). Times are seconds of any clock the caller uses.

    >>> seen = LastSeen()
    >>> seen.update(0, [b"a", b"b"], now=100.0)
    >>> seen.update(0, [b"a"], now=200.0)
    >>> seen.silent(now=250.0, after=100.0), len(seen)
    (1, 2)
    >>> seen.forget([0]); len(seen)
    0
    """

    def __init__(self) -> None:
        self._seen: dict[Hashable, dict[bytes, float]] = {}

    def update(self, source: Hashable, devices: Iterable[bytes | None], now: float) -> None:
        self._seen.setdefault(source, {}).update(dict.fromkeys(filter(None, devices), now))

    def silent(self, now: float, after: float) -> int:
        """How many known devices sent nothing for ``after`` seconds or more."""
        cutoff = now - after
        return sum(1 for part in self._seen.values() for t in part.values() if t <= cutoff)

    def forget(self, sources: Iterable[Hashable]) -> None:
        for source in sources:
            self._seen.pop(source, None)

    def __len__(self) -> int:
        return sum(len(part) for part in self._seen.values())


class ConsumerLagProbe:
    """Lag per partition of a consumer group, from the broker's offsets.

    A consumer with the group's id that never subscribes: it joins no group, it only asks
    the group coordinator for committed offsets and the partition leaders for log ends.
    """

    def __init__(self, kafka: KafkaTarget, group: str, topics: Sequence[str]) -> None:
        self.topics = tuple(topics)
        self._consumer = Consumer(
            {
                **librdkafka_config(kafka),
                "group.id": group,
                "enable.auto.commit": False,
                "client.id": f"{group}-lag-probe",
                # librdkafka's own log (a line per connection attempt while the broker is
                # away) through Python logging, where the worker rate-limits it.
                "logger": logging.getLogger("envirostream.kafka"),
            }
        )

    def lag(self, timeout: float = 5.0) -> dict[tuple[str, int], int]:
        """``{(topic, partition): records}``; raises ``KafkaException`` on broker errors."""
        meta = self._consumer.list_topics(timeout=timeout)
        tps = [
            TopicPartition(topic, p)
            for topic in self.topics
            if topic in meta.topics
            for p in sorted(meta.topics[topic].partitions)
        ]
        if not tps:
            return {}
        committed = self._consumer.committed(tps, timeout=timeout)
        out: dict[tuple[str, int], int] = {}
        for tp in committed:
            if tp.error is not None:
                raise KafkaException(tp.error)
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(tp.topic, tp.partition), timeout=timeout, cached=False
            )
            start = tp.offset if tp.offset >= 0 else low  # nothing committed yet: all of it
            out[(tp.topic, tp.partition)] = max(0, high - start)
        return out

    def close(self) -> None:
        self._consumer.close()


async def sample_health(
    metrics: PipelineMetrics,
    last_seen: LastSeen,
    lag_probe: ConsumerLagProbe | None,
    silent_after: float,
) -> None:
    """Housekeeping gauges: silent devices, and consumer lag from the broker's offsets
    (probed in a thread; a failed probe is counted and logged, never raised)."""
    now = time.monotonic()
    metrics.devices_known.set(len(last_seen))
    metrics.devices_silent.set(last_seen.silent(now, silent_after))
    if lag_probe is None:
        return
    try:
        lag = await asyncio.to_thread(lag_probe.lag)
    except KafkaException as exc:
        metrics.lag_probe_errors.inc()
        log.warning("consumer lag not sampled: %s", exc)
        return
    for (topic, partition), records in lag.items():
        metrics.consumer_lag.labels(topic, str(partition)).set(records)
