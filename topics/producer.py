"""A batching, non-blocking Kafka producer with delivery accounting (librdkafka underneath).

``send_batch`` queues records without waiting (librdkafka batches, compresses and retries);
``flush`` waits for delivery and returns how many records were NOT delivered, so a run can
report its losses instead of hiding them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry, Counter

from core.errors import ServiceRefusedError, ServiceUnavailableError
from topics.kafka_config import (
    KafkaTarget,
    handshake_hint,
    kafka_address,
    librdkafka_config,
    refusal_hint,
)

__all__ = ["ProducerMetrics", "ReadingSender", "RecordProducer", "wait_for_broker"]


class ReadingSender(Protocol):
    """What a producing loop needs of its transport: :class:`RecordProducer` (Kafka) or
    ``producers.mqtt_publisher.MqttPublisher`` (MQTT, through the gateway)."""

    delivered: int
    failed: int
    last_error: str | None

    def send_batch(
        self, topic: str, keys: Sequence[bytes | str | None], values: Sequence[bytes | None]
    ) -> None: ...

    def flush(self, timeout: float = 60.0) -> int: ...


def wait_for_broker(kafka: KafkaTarget, timeout: float) -> None:
    """Raise :class:`ServiceUnavailableError` unless the cluster answers within ``timeout``.

    A broker that refuses us (wrong SASL credentials, a certificate we do not trust) fails
    at once with :class:`ServiceRefusedError`, naming authentication or TLS and the settings
    to check; a broker that hangs up on the first request adds a security-protocol hint to
    the timeout message.
    """
    refused: list[str] = []
    suspected: list[str] = []

    def on_error(err: KafkaError) -> None:
        hint = refusal_hint(kafka, err)
        if hint is not None:
            refused.append(hint)

    class _Suspicions(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            suspect = handshake_hint(kafka, record.getMessage())
            if suspect is not None:
                suspected.append(suspect)

    # librdkafka's log of this probe (a line per failed attempt) is read here, not printed.
    logger = logging.getLogger("envirostream.kafka.wait")
    logger.propagate = False
    logger.setLevel(logging.INFO)  # librdkafka's FAIL lines are INFO
    handler = _Suspicions()
    logger.addHandler(handler)
    conf: dict[str, Any] = {**librdkafka_config(kafka), "error_cb": on_error, "logger": logger}
    admin = AdminClient(conf)
    address = kafka_address(kafka)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                admin.list_topics(timeout=min(5.0, max(0.5, deadline - time.monotonic())))
                return
            except KafkaException:
                admin.poll(0)  # serve error_cb and the log
                if refused:
                    reason = refused[-1]
                    raise ServiceRefusedError("Kafka", address, reason) from None  # noqa: EM101
                if time.monotonic() >= deadline:
                    hint = suspected[-1] if suspected else _START_HINT
                    hint = f"no answer within {timeout:.0f}s; {hint}"
                    raise ServiceUnavailableError("Kafka", address, hint) from None  # noqa: EM101
                time.sleep(0.5)
    finally:
        logger.removeHandler(handler)


_START_HINT = "start it with `envirostream infra up` or set ENVIROSTREAM_KAFKA_BOOTSTRAP"


class RecordProducer:
    """Produces keyed records; counts what was acknowledged and what failed."""

    def __init__(
        self, kafka: KafkaTarget, *, linger_ms: int = 20, extra: dict | None = None
    ) -> None:
        conf = {
            **librdkafka_config(kafka),
            "linger.ms": linger_ms,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "enable.idempotence": True,  # retries never duplicate or reorder
            # Same key→partition mapping as the Java client, aiokafka and Faust.
            "partitioner": "murmur2_random",
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 512 * 1024,
            "message.timeout.ms": 120_000,
        }
        conf.update(extra or {})
        self._producer = Producer(conf)
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            self.last_error = str(err)

    def send_batch(
        self,
        topic: str,
        keys: Sequence[bytes | str | None],
        values: Sequence[bytes | None],
        headers: Sequence[list[tuple[str, bytes]] | None] | None = None,
        timestamps_ms: Sequence[int] | None = None,
        partitions: Sequence[int] | None = None,
    ) -> None:
        """Queue the records; blocks only while librdkafka's queue is full (backpressure).

        ``partitions``: explicit partitions (else the key's partition, murmur2 as in Java).
        """
        produce = self._producer.produce
        if headers is None and timestamps_ms is None and partitions is None:
            # The simulator's hot path: positional arguments, no per-record dict.
            cb = self._on_delivery
            poll = self._producer.poll
            for key, value in zip(keys, values, strict=True):
                try:
                    produce(topic, value, key, on_delivery=cb)
                except BufferError:
                    while True:
                        poll(0.05)
                        try:
                            produce(topic, value, key, on_delivery=cb)
                            break
                        except BufferError:
                            continue
            poll(0)
            return
        for i, value in enumerate(values):
            kwargs: dict = {"key": keys[i], "value": value, "on_delivery": self._on_delivery}
            if headers is not None and headers[i]:
                kwargs["headers"] = headers[i]
            if timestamps_ms is not None:
                kwargs["timestamp"] = timestamps_ms[i]
            if partitions is not None:
                kwargs["partition"] = partitions[i]
            while True:
                try:
                    produce(topic, **kwargs)
                    break
                except BufferError:
                    self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for delivery; return the number of records still undelivered."""
        return int(self._producer.flush(timeout))

    @property
    def in_flight(self) -> int:
        return len(self._producer)


class ProducerMetrics:
    """Counters of a producing process (simulator or replayer), on its own registry.

    One family per quantity with a ``source`` label, so dashboards and rules sum them.
    """

    def __init__(self, registry: CollectorRegistry, source: str) -> None:
        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, ["source"], registry=registry)

        self.produced = counter(
            "envirostream_readings_produced", "Readings handed to the Kafka producer."
        ).labels(source)
        self.skipped = counter(
            "envirostream_input_rows_skipped", "Input rows skipped as unreadable (replay)."
        ).labels(source)
        self.delivered = counter(
            "envirostream_readings_delivered", "Readings acknowledged by the broker."
        ).labels(source)
        self.failed = counter(
            "envirostream_delivery_failures",
            "Readings the broker did not acknowledge (after retries).",
        ).labels(source)
        self._seen = (0, 0, 0, 0)

    def observe(self, produced: int, skipped: int, producer: ReadingSender) -> None:
        """Bring the counters up to the given running totals."""
        now = (produced, skipped, producer.delivered, producer.failed)
        counters = (self.produced, self.skipped, self.delivered, self.failed)
        for c, new, old in zip(counters, now, self._seen, strict=True):
            if new > old:
                c.inc(new - old)
        self._seen = now
