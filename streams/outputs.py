"""What the worker produces to Kafka: dead letters, aggregates, anomaly scores, alerts.

:class:`Outputs` encodes each kind with its Avro schema, keys it (device id, or the alert
key for alerts), hands it to the producer in one batch and counts it. Nothing here waits
for the broker; :meth:`Outputs.acknowledged` does, and the commit calls it before any input
offset is committed: offsets never pass an output the broker has not acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from core.metrics import PipelineMetrics
from schemas import AvroCodec
from streams.detection import DetectionOutput
from streams.records import DeadLetter
from streams.routing import Rekeyed
from topics import AGGREGATES, ALERTS, ANOMALIES, DLQ, READINGS
from topics.producer import RecordProducer

__all__ = ["Outputs", "OutputsPendingError", "UndeliveredOutputError"]

AGGREGATE = "WindowAggregate"
ANOMALY_SCORE = "AnomalyScore"
ALERT = "Alert"


class UndeliveredOutputError(RuntimeError):
    """Output records were not acknowledged by the broker: input offsets stay uncommitted."""


class OutputsPendingError(UndeliveredOutputError):
    """Output records are still queued (the broker is away), none failed: wait, retry."""


class Outputs:
    """The worker's Kafka outputs, through one producer."""

    def __init__(
        self, producer: RecordProducer, codec: AvroCodec, metrics: PipelineMetrics
    ) -> None:
        self.producer = producer
        self.codec = codec
        self.metrics = metrics

    def send_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        """The original bytes to ``telemetry.dlq``, headers naming the error and origin."""
        if not letters:
            return
        self.producer.send_batch(
            DLQ,
            [d.record.key for d in letters],
            [d.record.value or b"" for d in letters],
            headers=[d.headers() for d in letters],
        )
        for d in letters:
            self.metrics.dead_lettered.labels(d.reason).inc()

    def send_rekeyed(self, moved: Sequence[Rekeyed]) -> None:
        """Readings found on another partition than their device's: the original bytes back
        to ``telemetry.readings``, keyed by the device, on its partition."""
        if not moved:
            return
        self.producer.send_batch(
            READINGS,
            [m.device_id.encode() for m in moved],
            [m.record.value for m in moved],
            headers=[m.headers() for m in moved],
            partitions=[m.partition for m in moved],
        )
        self.metrics.readings_rekeyed.inc(len(moved))

    def send_aggregates(self, records: list[dict[str, Any]]) -> None:
        """Closed windows as ``WindowAggregate`` records keyed by device."""
        if not records:
            return
        values = self.codec.encode_batch(AGGREGATE, records)
        keys = [r["device_id"].encode() for r in records]
        self.producer.send_batch(AGGREGATES, keys, values)
        self.metrics.windows_emitted.inc(len(records))

    def send_detection(self, out: DetectionOutput) -> None:
        """Anomaly scores keyed by device, alert state changes keyed by alert key."""
        if out.anomalies:
            values = self.codec.encode_batch(ANOMALY_SCORE, out.anomalies)
            keys = [a["device_id"].encode() for a in out.anomalies]
            self.producer.send_batch(ANOMALIES, keys, values)
        if out.alerts:
            values = self.codec.encode_batch(ALERT, out.alerts)
            keys = [a["alert_key"].encode() for a in out.alerts]
            self.producer.send_batch(ALERTS, keys, values)
        for (detector, device_type), n in out.anomaly_counts.items():
            self.metrics.anomalies.labels(detector, device_type).inc(n)
        for severity, n in out.suppressed.items():
            self.metrics.alerts_suppressed.labels(severity).inc(n)

    async def flush(self, timeout: float) -> int:
        """Wait (in a thread) up to ``timeout`` s for the broker; return what is undelivered."""
        return await asyncio.to_thread(self.producer.flush, timeout)

    async def acknowledged(self, timeout: float = 60.0) -> None:
        """Return once everything sent was acknowledged; raise if anything was not:
        :class:`OutputsPendingError` while records are only still queued (the producer keeps
        retrying them), :class:`UndeliveredOutputError` when any failed for good."""
        undelivered = await self.flush(timeout)
        if undelivered or self.producer.failed:
            msg = (
                f"{undelivered} output records undelivered, {self.producer.failed} failed "
                f"({self.producer.last_error}); not committing input offsets"
            )
            if not self.producer.failed:
                raise OutputsPendingError(msg)
            raise UndeliveredOutputError(msg)
