"""One worker's state and the order things happen in; each job is done by its own part.

:class:`PipelineWorker` is what the consumer loop and the Faust timers call: a batch of
readings, of operator feedback or of a stored topic, the housekeeping tick, a rebalance. It
holds the lock that serialises them and decides *when* to flush the sink, checkpoint and
commit; *how* is in the parts it wires: :mod:`streams.readings` (decode, validate, window,
detect), :mod:`streams.intake` (stored topics), :mod:`streams.feedback`,
:mod:`streams.outputs` (Kafka), :mod:`streams.checkpoints` (detector state),
:mod:`streams.alert_forwarding`, :mod:`streams.commits`, :mod:`streams.store_writes` (the
sink's writes) and a sink implementing :class:`sinks.base.BatchingSink` — the worker knows
the contract, not the destination.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from faust.types import TP

from core.metrics import PipelineMetrics
from core.records import Source
from core.settings import Settings
from schemas import AvroCodec
from sinks.alertmanager import AlertmanagerForwarder
from sinks.base import BatchingSink, StoredWindows
from streams.alert_forwarding import AlertForwarding
from streams.checkpoints import DetectorCheckpoints, restored_clocks
from streams.commits import CommitFunction, CommitUnavailableError, OffsetCommitter, safe_offsets
from streams.corrections import WindowCorrections
from streams.detection import detection_stage_from_settings
from streams.feedback import FeedbackIntake
from streams.health import ConsumerLagProbe, LastSeen, sample_health
from streams.intake import STORED_TOPICS, TopicIntake
from streams.outage import Outage
from streams.outputs import Outputs, OutputsPendingError
from streams.readings import READING_COLUMNS, ReadingsProcessor
from streams.records import InputRecord
from streams.store_writes import READINGS_TABLE, StoreWrites
from streams.validate import EventTimeBounds
from topics import ALERTS, READINGS
from topics.producer import RecordProducer

__all__ = ["SINK_FLUSH_CHECK_SECONDS", "PipelineWorker"]

SINK_FLUSH_CHECK_SECONDS = 0.05  # how often the app's timer asks flush_due
STOP_WRITES_SECONDS = 30.0  # how long a stop waits for the store writes in the background

log = logging.getLogger(__name__)


def keys_by_source(
    batch: Sequence[InputRecord], moved: Sequence[InputRecord] = ()
) -> dict[Source, list[bytes | None]]:
    """The record keys (device ids) of each input partition of ``batch``, in one pass;
    records of ``moved`` (the batch's own objects, moved to another partition) left out."""
    if moved:
        skip = {id(r) for r in moved}
        batch = [r for r in batch if id(r) not in skip]
    keys: dict[Source, list[bytes | None]] = {}
    for r in batch:
        found = keys.get(r.source)
        if found is None:
            found = keys[r.source] = []
        found.append(r.key)
    return keys


class PipelineWorker:
    """State and I/O of one worker process; the consumer loop and timers call into it."""

    def __init__(
        self,
        settings: Settings,
        codec: AvroCodec,
        sink: BatchingSink,
        producer: RecordProducer,
        metrics: PipelineMetrics,
        commit: CommitFunction | None = None,
        clock: Callable[[], float] = time.time,
        lag_probe: ConsumerLagProbe | None = None,
        forwarder: AlertmanagerForwarder | None = None,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.sink = sink
        self.metrics = metrics
        self._clock = clock
        self.lag_probe = lag_probe
        self.detection = detection_stage_from_settings(settings)
        self.processor = ReadingsProcessor(
            codec,
            window_ms=settings.window_ms,
            lateness_ms=settings.lateness_ms,
            window_label=settings.window_label,
            late_policy=settings.late_policy if isinstance(sink, StoredWindows) else "store",
            correction_horizon_ms=round(settings.correction_horizon_hours * 3_600_000),
            bounds=EventTimeBounds(settings.event_time_floor_ms, settings.max_future_ms),
            detection=self.detection,
        )
        self.corrections = WindowCorrections(settings.window_ms, settings.window_label)
        self.outputs = Outputs(producer, codec, metrics)
        self.intakes = {s.topic: TopicIntake(s, codec, sink) for s in STORED_TOPICS}
        self.feedback = FeedbackIntake(codec, self.detection, metrics)
        self.checkpoints = DetectorCheckpoints(
            settings, self.detection, self.outputs, codec, metrics
        )
        self.alerting = AlertForwarding(metrics, forwarder)
        self.committer = OffsetCommitter(commit)
        # The sink's column order for readings, picked from the processor's columns.
        self._reading_order = [READING_COLUMNS.index(c) for c in sink.column_names(READINGS_TABLE)]
        self.pending_restore: set[int] = set()  # readings partitions assigned, not restored
        self.last_input: dict[Source, float] = {}
        self.last_seen = LastSeen()
        self.lock = asyncio.Lock()
        self._last_commit = 0.0
        self.writes = StoreWrites(settings, sink, self.corrections, self.outputs, metrics)
        self.broker_outage = Outage(
            "the Kafka broker",
            initial=settings.sink_retry_initial_seconds,
            cap=settings.sink_retry_max_seconds,
            waiting="outputs and commits wait",
        )

    @property
    def sink_outage(self) -> Outage:
        return self.writes.outage

    @property
    def committed(self) -> dict[Source, int]:
        return self.committer.committed

    def bind_commit(self, commit: CommitFunction) -> None:
        """Set how offsets are committed (the input consumer, once it exists)."""
        self.committer.bind(commit)

    # -- input batches ------------------------------------------------------------------
    async def on_readings(self, batch: Sequence[InputRecord]) -> None:
        async with self.lock:
            result = self.processor.process(batch, self._clock())
            self.corrections.add(result.late_windows)
            now = time.monotonic()
            # Moved readings are seen where they land, under their device.
            for src, src_keys in keys_by_source(batch, [m.record for m in result.rekeyed]).items():
                self.last_input[src] = now
                self.last_seen.update(src, src_keys, now)
            self.metrics.readings_consumed.inc(result.consumed)
            self.metrics.late_readings.inc(result.late)
            self.metrics.rekeyed_duplicates.inc(result.duplicates)
            self.outputs.send_rekeyed(result.rekeyed)  # acknowledged before any commit
            for block in result.rows:
                columns = [block.columns[i] for i in self._reading_order]
                self.sink.add(READINGS_TABLE, columns, block.source, block.first_offset)
            self.outputs.send_dead_letters(result.dead_letters)
            self.outputs.send_aggregates(result.aggregates)
            self.outputs.send_detection(result.detection)
            await self.flush_and_commit(force=False)

    async def on_feedback(self, batch: Sequence[InputRecord]) -> None:
        """``AlertFeedback`` records: the alert changes go out, a false positive's raised
        thresholds are checkpointed at once; both are on Kafka before the commit."""
        async with self.lock:
            result = self.feedback.apply(batch)
            self.outputs.send_dead_letters(result.dead_letters)
            self.outputs.send_detection(self.detection.take())
            if result.raised:  # those devices at once, not the whole fleet
                await self.checkpoints.checkpoint(devices=result.raised)
            await self.flush_and_commit(force=False)

    async def on_sink_records(self, topic: str, batch: Sequence[InputRecord]) -> None:
        """Records of one stored topic: decode, dead-letter the bad, buffer the rows."""
        async with self.lock:
            bad, records = self.intakes[topic].take(batch)
            self.outputs.send_dead_letters(bad)
            if topic == ALERTS:
                self.alerting.observe(batch, records)
            await self.flush_and_commit(force=False)

    # -- rebalances ---------------------------------------------------------------------
    def assigned(self, partitions: Sequence[int]) -> None:
        """Readings partitions assigned: their state is restored before the next batch."""
        self.pending_restore.update(partitions)

    async def restore_pending(self) -> None:
        """Restore newly assigned partitions' state (models, alert log, device clocks) before
        the consume loop handles a batch: no record meets an empty state."""
        if not self.pending_restore:
            return
        partitions = sorted(self.pending_restore)
        self.pending_restore.clear()
        async with self.lock:
            await self.checkpoints.restore(partitions)
            self.processor.seed_clocks(restored_clocks(self.detection, partitions))

    async def release(self, tps: Sequence[TP]) -> None:
        """Partitions revoked: checkpoint their devices for the next owner, then forget."""
        sources = [(tp.topic, tp.partition) for tp in tps if tp.topic == READINGS]
        async with self.lock:
            if sources and await self.checkpoints.checkpoint(sources):
                await self.outputs.flush(60.0)
            self.forget(tps)

    def forget(self, tps: Sequence[TP]) -> None:
        sources = [(tp.topic, tp.partition) for tp in tps]
        self.processor.forget(sources)
        self.corrections.forget(sources)
        self.last_seen.forget(sources)
        self.sink.forget(sources)
        for intake in self.intakes.values():
            intake.forget(sources)
        self.feedback.forget(sources)
        self.committer.forget(sources)
        for src in sources:
            self.last_input.pop(src, None)
        self.alerting.forget(sources)

    async def stop(self) -> None:
        """A clean stop ends the writes in the background, and leaves the models' latest
        state for the next start."""
        async with self.lock:
            try:
                await self.writes.settle(STOP_WRITES_SECONDS)
            except TimeoutError:
                log.warning("stopping with store writes unfinished; their input is replayed")
            except Exception:  # the checkpoint still goes out; the input is replayed
                log.exception("the store writes in the background failed")
            await self.checkpoints.checkpoint()
            await self.outputs.flush(30.0)

    # -- time-driven work ---------------------------------------------------------------
    async def tick(self) -> None:
        """Alertmanager posts, idle windows, device expiry, time-bound flushes, commits."""
        self.alerting.forward()
        if self.lock.locked():
            return  # a batch is being handled; it flushes and commits itself
        async with self.lock:
            now = time.monotonic()
            idle = [
                src
                for src, seen in self.last_input.items()
                if now - seen >= self.settings.idle_close_seconds
            ]
            if now - self.checkpoints.last_expiry >= 60.0:
                self.expire_devices()
            # Each device closes its windows after its own silence (wall clock).
            closed, recheck = self.processor.close_idle(
                self._clock(), self.settings.idle_close_seconds
            )
            self.outputs.send_aggregates(closed)
            self.corrections.add(recheck)
            self.detection.silence(self._clock())  # devices silent too long: DEVICE_OFFLINE
            for src in idle:  # quiet alerts resolve even when no input moves time on
                self.detection.idle(src, round((now - self.last_input[src]) * 1000))
            self.outputs.send_detection(self.detection.take())
            await self.flush_and_commit(force=False)

    async def flush_due(self) -> bool:
        """Write the sink's tables that are due now, unless a batch is being handled (it
        flushes itself). A timer calls this every ``SINK_FLUSH_CHECK_SECONDS``: between
        batches, rows wait ``ENVIROSTREAM_SINK_BATCH_SECONDS``, not up to the housekeeping
        interval more. Returns whether it flushed."""
        if self.lock.locked() or not self.writes.startable():
            return False
        async with self.lock:
            await self.flush_and_commit(force=False)
        return True

    def expire_devices(self) -> int:
        """Forget devices silent for the device-state TTL (tombstones in the changelog)."""
        return self.checkpoints.expire(self.last_input)

    async def sample_health(self) -> None:
        await sample_health(
            self.metrics, self.last_seen, self.lag_probe, self.settings.silent_device_seconds
        )

    # -- flushing and committing --------------------------------------------------------
    async def flush_and_commit(self, *, force: bool) -> None:
        """Flush the sink's due tables (all when ``force``); every commit interval, also
        checkpoint a paced share of the changed devices (all when ``force``) and commit."""
        s = self.settings
        await self.writes.flush(self._clock(), force=force)
        self.metrics.windows_open.set(self.processor.open_windows())
        if not force and time.monotonic() - self._last_commit < s.commit_interval_seconds:
            return
        # flushed by commit() before any offset
        if force:
            await self.checkpoints.checkpoint()
        else:
            await self.checkpoints.paced(time.monotonic())
        await self.commit()

    def hold_idle(self) -> None:
        """Input is paused (not idle): its partitions' idle clocks do not run meanwhile."""
        now = time.monotonic()
        for src in self.last_input:
            self.last_input[src] = now

    def sink_backlogged(self) -> bool:
        """Too many rows wait for the store: the consumer loop stops fetching."""
        return self.writes.backlogged()

    async def commit(self) -> None:
        """Commit every input offset that is safe, after the outputs are acknowledged.

        While the broker is away (outputs still queued, or the commit refused) nothing is
        committed and the worker goes on; the next commit takes the same offsets."""
        if not self.broker_outage.ready():
            return  # the broker is away: the next attempt after the backoff
        # Acks take milliseconds: a broker silent for 5 s counts as away (the worker goes on
        # storing rows meanwhile); while it is away a short wait, so no tick stalls on it.
        wait = 5.0 if self.broker_outage.up else 0.2
        # The offsets are taken before the wait: a write in the background may store rows
        # and send corrections meanwhile, and only what was sent before the wait is acked.
        progress: dict[Source, Any] = {}
        for src in list(self.processor.next_offset):
            if (off := self.processor.commit_offset(src)) is not None:
                held = self.corrections.hold(src)
                progress[src] = off if held is None else min(off, held)
        for intake in self.intakes.values():
            progress.update(intake.next_offset)
        progress.update(self.feedback.next_offset)
        offsets = safe_offsets(progress, self.sink.pending_from)
        try:
            await self.outputs.acknowledged(wait)
        except OutputsPendingError as exc:
            self.broker_outage.failed(exc)
            self._last_commit = time.monotonic()
            return
        try:
            await self.committer.commit(offsets)
        except CommitUnavailableError as exc:
            self.broker_outage.failed(exc)
        else:
            self.broker_outage.succeeded()
        self._last_commit = time.monotonic()
