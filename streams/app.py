"""The Faust app: wires the readings processor, the outputs and the ClickHouse sinks.

The input topics are read by an aiokafka consumer owned by this module (one consumer
group, ``ENVIROSTREAM_APP_ID``), in batches, and their offsets are committed explicitly:
only up to the first reading of a window still open or a row not yet stored (see
``ReadingsProcessor.commit_offset``), and only after the records derived from them
(aggregates, dead letters) were acknowledged by the broker. The topics stored as they are
(aggregates, anomalies, alerts) share one sink path (``sinks.topic_sink``): decode with the
topic's schema, dead-letter what does not decode, buffer rows, flush, commit after flush.
Alert records are also forwarded to Alertmanager when one is configured, from a thread,
so an unreachable Alertmanager never holds up the pipeline or its ClickHouse writes.
Faust's stream delivery and auto-ack would commit batches as soon as they were iterated
(faust-streaming #175, #315) and stalled under load here (#88); Faust runs the process:
timers, signals, tables.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import faust
import numpy as np
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from confluent_kafka import KafkaException
from faust.types import TP

from core.metrics import SEVERITIES, PipelineMetrics
from core.settings import Settings
from schemas import AvroCodec, DecodeError
from sinks.alertmanager import AlertmanagerForwarder
from sinks.topic_sink import TOPIC_SINKS, TopicSinkBuffer
from sinks.writer import ClickHouseWriter, RowBuffer
from streams.alert_log import read_latest_alerts, read_latest_state
from streams.detection import DetectionOutput, detection_stage_from_settings
from streams.health import ConsumerLagProbe, LastSeen
from streams.readings import DeadLetter, InputRecord, ReadingsProcessor, Source
from topics import AGGREGATES, ALERTS, ALERTS_FEEDBACK, ANOMALIES, DLQ, READINGS
from topics.definitions import detector_state_topic
from topics.producer import RecordProducer

__all__ = ["INPUT_TOPICS", "PipelineWorker", "create_app"]

log = logging.getLogger(__name__)

AGGREGATE = "WindowAggregate"
ANOMALY_SCORE = "AnomalyScore"
ALERT = "Alert"
FEEDBACK = "AlertFeedback"
FEEDBACK_KINDS = {"ACK": "ack", "FALSE_POSITIVE": "false_positive"}
# What the worker's consumer group reads: the readings, operator feedback (keyed and
# partitioned like the readings) and every topic stored as it is.
INPUT_TOPICS = [READINGS, ALERTS_FEEDBACK, *(s.topic for s in TOPIC_SINKS)]


class PipelineWorker:
    """State and I/O of one worker process; the Faust agents call into it."""

    def __init__(
        self,
        settings: Settings,
        codec: AvroCodec,
        writer: ClickHouseWriter,
        producer: RecordProducer,
        metrics: PipelineMetrics,
        commit: Callable[[dict[TP, int]], Any] | None = None,
        clock: Callable[[], float] = time.time,
        lag_probe: ConsumerLagProbe | None = None,
        forwarder: AlertmanagerForwarder | None = None,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.writer = writer
        self.producer = producer
        self.metrics = metrics
        self._commit = commit
        self._clock = clock
        self.detection = detection_stage_from_settings(settings)
        self.processor = ReadingsProcessor(
            codec,
            window_ms=settings.window_ms,
            lateness_ms=settings.lateness_ms,
            window_label=settings.window_label,
            late_policy=settings.late_policy,
            detection=self.detection,
        )
        self.sinks: dict[str, TopicSinkBuffer] = {s.topic: TopicSinkBuffer(s) for s in TOPIC_SINKS}
        self.aggregates = self.sinks[AGGREGATES].buffer
        self.forwarder = forwarder
        self._forwarding: asyncio.Future[int] | None = None
        self.firing: dict[str, tuple[Source, str]] = {}  # alert_key → (partition, severity)
        self.committed: dict[Source, int] = {}
        self.feedback_next: dict[Source, int] = {}  # next feedback offset to commit
        self.pending_restore: set[int] = set()  # readings partitions assigned, not restored
        self.state_topic = detector_state_topic(settings)
        self._last_checkpoint = time.monotonic()
        self._last_expiry = time.monotonic()
        self.last_input: dict[Source, float] = {}
        self.lock = asyncio.Lock()
        self._last_commit = 0.0
        self.lag_probe = lag_probe
        self.last_seen = LastSeen()

    # -- readings -----------------------------------------------------------------------
    async def on_readings(self, batch: Sequence[InputRecord]) -> None:
        async with self.lock:
            result = self.processor.process(batch)
            now = time.monotonic()
            for src in {r.source for r in batch}:
                self.last_input[src] = now
                self.last_seen.update(src, (r.key for r in batch if r.source == src), now)
            self.metrics.readings_consumed.inc(result.consumed)
            self.metrics.late_readings.inc(result.late)
            self._send_dead_letters(result.dead_letters)
            self._send_aggregates(result.aggregates)
            self._send_detection(result.detection)
            await self._maybe_flush_and_commit(force=False)

    def _send_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
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

    def _send_aggregates(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        values = self.codec.encode_batch(AGGREGATE, records)
        keys = [r["device_id"].encode() for r in records]
        self.producer.send_batch(AGGREGATES, keys, values)
        self.metrics.windows_emitted.inc(len(records))

    def _send_detection(self, out: DetectionOutput) -> None:
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

    def assigned(self, partitions: Sequence[int]) -> None:
        """Readings partitions assigned: their state is restored before the next batch."""
        self.pending_restore.update(partitions)

    async def restore_pending(self) -> None:
        """Restore the state of newly assigned partitions, if any (the consume loop calls
        this before it handles a fetched batch, so no record of those partitions is
        processed against an empty state)."""
        if not self.pending_restore:
            return
        partitions = sorted(self.pending_restore)
        self.pending_restore.clear()
        async with self.lock:
            await self._restore_models(partitions)
            await self._restore_alerts()

    async def _restore_alerts(self) -> int:
        """Rebuild the alert dedup state from ``telemetry.alerts`` (latest per key).

        This worker's own records are flushed first so the log is complete up to now; keys
        held in memory (partitions kept) are not touched.
        """
        await asyncio.to_thread(self.producer.flush, 60.0)
        latest = await asyncio.to_thread(
            read_latest_alerts, self.settings.bootstrap_servers, ALERTS, self.codec
        )
        n = self.detection.restore(latest.values())
        log.info("alert state restored: %d of %d alert keys in %s", n, len(latest), ALERTS)
        return n

    async def _restore_models(self, partitions: Sequence[int]) -> int:
        """Load the checkpointed detector state of the devices on readings ``partitions``.

        Devices held in memory (partitions kept through a rebalance) are not touched; the
        others continue where their last checkpoint left off, without a new warm-up.
        """
        n = 0
        for p in partitions:
            latest = await asyncio.to_thread(
                read_latest_state, self.settings.bootstrap_servers, self.state_topic, [p]
            )
            n += self.detection.load_checkpoint(latest.items(), (READINGS, p))
        self.metrics.detector_restored.inc(n)
        log.info("detector state restored: %d devices from %s", n, self.state_topic)
        return n

    async def checkpoint_models(self, sources: Sequence[Source] | None = None) -> int:
        """Queue the state of changed devices to the changelog (the commit flushes it).

        Called with the lock held; serialising runs in a thread (~0.5 ms per device, a
        vehicle's state is ~10 kB compressed) so heartbeats and timers keep running.
        """
        records = await asyncio.to_thread(self.detection.checkpoint, sources)
        if records:
            self.producer.send_batch(
                self.state_topic,
                [key for _, key, _ in records],
                [value for _, _, value in records],
                partitions=[src[1] for src, _, _ in records],
            )
            self.metrics.detector_checkpoints.inc(len(records))
            self.metrics.detector_checkpoint_bytes.inc(sum(len(v) for _, _, v in records))
        self._last_checkpoint = time.monotonic()
        return len(records)

    def expire_devices(self) -> int:
        """Drop devices silent for ``ENVIROSTREAM_DEVICE_STATE_TTL_HOURS`` of event time and
        delete their changelog records (tombstones)."""
        ttl_ms = round(self.settings.device_state_ttl_hours * 3_600_000)
        gone = [k for src in list(self.last_input) for k in self.detection.expire(src, ttl_ms)]
        if gone:
            self.producer.send_batch(
                self.state_topic,
                [key for _, key in gone],
                [None] * len(gone),
                partitions=[src[1] for src, _ in gone],
            )
            log.info("forgot %d devices silent for %s h", len(gone), ttl_ms / 3_600_000)
        self._last_expiry = time.monotonic()
        return len(gone)

    async def release(self, tps: Sequence[TP]) -> None:
        """Partitions revoked: checkpoint their devices for the next owner, then forget."""
        sources = [(tp.topic, tp.partition) for tp in tps if tp.topic == READINGS]
        async with self.lock:
            if sources and await self.checkpoint_models(sources):
                await asyncio.to_thread(self.producer.flush, 60.0)
            self.forget(tps)

    # -- operator feedback ---------------------------------------------------------------
    async def on_feedback(self, batch: Sequence[InputRecord]) -> None:
        """``AlertFeedback`` records: ACK or FALSE_POSITIVE applied to the alerts held here.

        The alert state changes go to ``telemetry.alerts``; a false positive's raised
        thresholds are checkpointed at once, so both are on Kafka before the feedback's
        offset is committed (a crash replays the feedback, and applying it twice changes
        nothing: an alert is acknowledged or marked false positive once).
        """
        async with self.lock:
            decoded = self.codec.decode_batch(FEEDBACK, [r.value or b"" for r in batch])
            bad: list[DeadLetter] = []
            thresholds_changed = False
            for rec, item in zip(batch, decoded, strict=True):
                self.feedback_next[rec.source] = rec.offset + 1
                if isinstance(item, DecodeError):
                    bad.append(DeadLetter(rec, item.reason, str(item), "feedback"))
                    continue
                kind = FEEDBACK_KINDS.get(str(item["action"]))
                if kind is None:
                    detail = f"unknown feedback action {item['action']!r}"
                    bad.append(DeadLetter(rec, "invalid_feedback", detail, "feedback"))
                    continue
                found = self.detection.feedback(str(item["alert_id"]), kind, item["timestamp"])
                self.metrics.alert_feedback.labels(
                    kind, "applied" if found else "unknown_alert"
                ).inc()
                thresholds_changed |= found and kind == "false_positive"
                if not found:
                    log.warning(
                        "feedback %s for alert %s: no such alert held by this worker",
                        kind,
                        item["alert_id"],
                    )
            self._send_dead_letters(bad)
            self._send_detection(self.detection.take())
            if thresholds_changed:
                await self.checkpoint_models()
            await self._maybe_flush_and_commit(force=False)

    # -- topic sinks (aggregates, anomalies, alerts) -----------------------------------
    async def on_sink_records(self, topic: str, batch: Sequence[InputRecord]) -> None:
        """Records of one stored topic: decode, dead-letter the bad, buffer the rows."""
        async with self.lock:
            path = self.sinks[topic]
            decoded = self.codec.decode_batch(path.sink.schema, [r.value or b"" for r in batch])
            bad: list[DeadLetter] = []
            records: list[dict[str, Any] | None] = []
            for rec, item in zip(batch, decoded, strict=True):
                if isinstance(item, DecodeError):
                    bad.append(DeadLetter(rec, item.reason, str(item), "sink"))
                    records.append(None)
                else:
                    records.append(item)
            self._send_dead_letters(bad)
            path.add([(r.source, r.offset) for r in batch], records)
            if topic == ALERTS:
                self._on_alerts(batch, records)
            await self._maybe_flush_and_commit(force=False)

    async def on_aggregates(self, batch: Sequence[InputRecord]) -> None:
        await self.on_sink_records(AGGREGATES, batch)

    def _on_alerts(
        self, batch: Sequence[InputRecord], records: Sequence[Mapping[str, Any] | None]
    ) -> None:
        """Alert state changes: the firing gauge, and Alertmanager (posted off the loop)."""
        by_source: dict[Source, list[Mapping[str, Any]]] = {}
        for rec, alert in zip(batch, records, strict=True):
            if alert is None:
                continue
            by_source.setdefault(rec.source, []).append(alert)
            key = str(alert["alert_key"])
            if alert["state"] == "FIRING":
                self.firing[key] = (rec.source, str(alert["severity"]).lower())
            else:
                self.firing.pop(key, None)
        self._set_firing_gauge()
        if self.forwarder is not None:
            for src, alerts in by_source.items():
                self.forwarder.submit(alerts, owner=src)
            self.forward_alerts()

    def _set_firing_gauge(self) -> None:
        counts = Counter(severity for _, severity in self.firing.values())
        for severity in SEVERITIES:
            self.metrics.alerts_firing.labels(severity).set(counts.get(severity, 0))

    def forward_alerts(self) -> None:
        """Start a post to Alertmanager in a thread unless one is under way.

        The forwarder retries with backoff and keeps what it could not deliver, so nothing
        here waits for Alertmanager; the next call (every housekeeping tick) tries again.
        """
        if self.forwarder is None:
            return
        if self._forwarding is not None and not self._forwarding.done():
            return
        self._forwarding = asyncio.ensure_future(asyncio.to_thread(self.forwarder.flush))
        self._forwarding.add_done_callback(_log_failure)

    # -- flushing and committing --------------------------------------------------------
    async def tick(self) -> None:
        """Time-driven work: Alertmanager posts, idle windows, time-bound flushes, commits."""
        self.forward_alerts()
        if self.lock.locked():
            return  # a batch is being handled; it flushes and commits itself
        async with self.lock:
            now = time.monotonic()
            idle = [
                src
                for src, seen in self.last_input.items()
                if now - seen >= self.settings.idle_close_seconds
            ]
            if now - self._last_expiry >= 60.0:
                self.expire_devices()
            if idle:
                self._send_aggregates(self.processor.close_all(idle))
                for src in idle:  # quiet alerts resolve even when no input moves time on
                    self.detection.idle(src, round((now - self.last_input[src]) * 1000))
                self._send_detection(self.detection.take())
            await self._maybe_flush_and_commit(force=False)

    async def _flush_table(
        self, buffer: RowBuffer, latency_of: Callable[[list], np.ndarray]
    ) -> None:
        name = buffer.table.name
        columns = buffer.take()
        started = time.monotonic()
        try:
            rows = await asyncio.to_thread(self.writer.write, name, columns)
        except Exception:
            self.metrics.sink_errors.labels(name).inc()
            raise
        self.metrics.sink_batch_duration.labels(name).observe(time.monotonic() - started)
        self.metrics.sink_rows.labels(name).inc(rows)
        self.metrics.event_to_sink.observe_many(name, latency_of(columns))

    async def _maybe_flush_and_commit(self, *, force: bool) -> None:
        s = self.settings
        now_s = self._clock()
        if force or self.processor.readings.due(s.sink_batch_rows, s.sink_batch_seconds):
            await self._flush_table(self.processor.readings, _latency(now_s, 0))
        for path in self.sinks.values():
            if force or path.buffer.due(s.sink_batch_rows, s.sink_batch_seconds):
                await self._flush_table(path.buffer, _latency(now_s, path.sink.event_time_index))
        self.metrics.windows_open.set(self.processor.open_windows())
        if not force and time.monotonic() - self._last_commit < s.commit_interval_seconds:
            return
        if force or time.monotonic() - self._last_checkpoint >= s.detector_checkpoint_seconds:
            await self.checkpoint_models()  # flushed by commit() before any offset is committed
        await self.commit()

    async def commit(self) -> None:
        """Commit every input offset that is safe, after the outputs are acknowledged."""
        undelivered = await asyncio.to_thread(self.producer.flush, 60.0)
        if undelivered or self.producer.failed:
            msg = (
                f"{undelivered} output records undelivered, {self.producer.failed} failed "
                f"({self.producer.last_error}); not committing input offsets"
            )
            raise RuntimeError(msg)
        offsets: dict[TP, int] = {}
        for src in list(self.processor.next_offset):
            off = self.processor.commit_offset(src)
            if off is not None and off > self.committed.get(src, -1):
                offsets[TP(*src)] = off
        for path in self.sinks.values():
            for src, off in path.commit_offsets().items():
                if off > self.committed.get(src, -1):
                    offsets[TP(*src)] = off
        for src, off in self.feedback_next.items():
            if off > self.committed.get(src, -1):
                offsets[TP(*src)] = off
        if offsets:
            if self._commit is None:
                msg = "no consumer bound: call bind_commit() before processing"
                raise RuntimeError(msg)
            await self._commit(offsets)
            for tp, off in offsets.items():
                self.committed[(tp.topic, tp.partition)] = off
        self._last_commit = time.monotonic()

    async def sample_health(self) -> None:
        """Housekeeping gauges: silent devices, and consumer lag from the broker's offsets."""
        now = time.monotonic()
        self.metrics.devices_known.set(len(self.last_seen))
        silent = self.last_seen.silent(now, self.settings.silent_device_seconds)
        self.metrics.devices_silent.set(silent)
        if self.lag_probe is None:
            return
        try:
            lag = await asyncio.to_thread(self.lag_probe.lag)
        except KafkaException as exc:
            self.metrics.lag_probe_errors.inc()
            log.warning("consumer lag not sampled: %s", exc)
            return
        for (topic, partition), records in lag.items():
            self.metrics.consumer_lag.labels(topic, str(partition)).set(records)

    def bind_commit(self, commit: Callable[[dict[TP, int]], Any]) -> None:
        """Set how offsets are committed (the input consumer, once it exists)."""
        self._commit = commit

    def forget(self, tps: Sequence[TP]) -> None:
        sources = [(tp.topic, tp.partition) for tp in tps]
        self.processor.forget(sources)
        self.last_seen.forget(sources)
        for path in self.sinks.values():
            path.forget(sources)
        for src in sources:
            self.committed.pop(src, None)
            self.last_input.pop(src, None)
            self.feedback_next.pop(src, None)
        gone = set(sources)
        self.firing = {k: v for k, v in self.firing.items() if v[0] not in gone}
        self._set_firing_gauge()
        if self.forwarder is not None:
            self.forwarder.forget(sources)


def _latency(now_s: float, column: int) -> Callable[[list[Any]], np.ndarray]:
    """Seconds from the event times (epoch ms) in ``column`` to ``now_s``."""

    def latency(cols: list[Any]) -> np.ndarray:
        return now_s - np.asarray(cols[column], dtype=float) / 1000.0

    return latency


def _log_failure(task: asyncio.Future[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("forwarding alerts to Alertmanager failed", exc_info=task.exception())


def _records(batches: dict[Any, list[Any]]) -> dict[str, list[InputRecord]]:
    """Split one fetch by topic, each in partition-offset order."""
    by_topic: dict[str, list[InputRecord]] = {}
    for tp, messages in batches.items():
        by_topic.setdefault(tp.topic, []).extend(
            InputRecord(m.topic, m.partition, m.offset, m.key, m.value) for m in messages
        )
    return by_topic


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


def create_app(
    settings: Settings, build_worker: Callable[[faust.App], PipelineWorker]
) -> faust.App:
    """The Faust app; ``build_worker`` makes the worker state once the app exists."""
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        # Faust's own group (tables, timers) is apart from the input consumer's group,
        # which is ``settings.app_id`` (see consume()).
        f"{settings.app_id}-app",
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        datadir=str(settings.data_dir / "faust"),
    )
    holder: dict[str, PipelineWorker] = {}

    def worker() -> PipelineWorker:
        if "w" not in holder:
            holder["w"] = build_worker(app)
        return holder["w"]

    @app.task
    async def consume() -> None:
        """Fetch input in batches with our own consumer and commit explicitly.

        Faust's stream delivery is not used for the input topics: measured here, a
        Faust agent on ``take_events`` stalled for good after 162,442 of 200,000 records
        (its buffer-full pause, faust-streaming #88), and it commits on its own schedule.
        """
        w = worker()
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.bootstrap_servers,
            group_id=settings.app_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.worker_batch_size,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=8 * 1024 * 1024,
            session_timeout_ms=int(settings.session_timeout_seconds * 1000),
            heartbeat_interval_ms=int(min(3.0, settings.session_timeout_seconds / 3) * 1000),
            # Range: partition p of every input topic goes to one worker, so the feedback
            # on a device reaches the worker that owns its readings (same key, same p).
            partition_assignment_strategy=(RangePartitionAssignor,),
        )
        consumer.subscribe(INPUT_TOPICS, listener=_Rebalance(worker))

        async def commit(offsets: dict[TP, int]) -> None:
            await consumer.commit(
                {TopicPartition(tp.topic, tp.partition): o for tp, o in offsets.items()}
            )

        w.bind_commit(commit)
        await consumer.start()
        timeout_ms = int(settings.worker_batch_seconds * 1000)
        try:
            while not app.should_stop:
                fetched = await consumer.getmany(
                    timeout_ms=timeout_ms, max_records=settings.worker_batch_size
                )
                await w.restore_pending()
                for topic, records in _records(fetched).items():
                    if topic == READINGS:
                        await w.on_readings(records)
                    elif topic == ALERTS_FEEDBACK:
                        await w.on_feedback(records)
                    else:
                        await w.on_sink_records(topic, records)
        finally:
            try:  # a clean stop leaves the models' latest state for the next start
                async with w.lock:
                    await w.checkpoint_models()
                    await asyncio.to_thread(w.producer.flush, 30.0)
            except Exception:
                log.exception("final detector checkpoint failed")
            await consumer.stop()

    @app.timer(interval=0.5)
    async def housekeeping() -> None:
        await worker().tick()

    @app.timer(interval=settings.health_interval_seconds)
    async def sample_health() -> None:
        await worker().sample_health()

    return app
