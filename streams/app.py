"""The Faust app: wires the readings processor, the outputs and the ClickHouse sinks.

Offsets of the input topics are committed by this module, not by Faust's auto-ack: only
up to the first reading of a window still open or a row not yet stored (see
``ReadingsProcessor.commit_offset``), and only after the records derived from them
(aggregates, dead letters) were acknowledged by the broker. Faust's own acking is turned
off for these topics (``acks=False``) because it would commit a batch as soon as it was
iterated, before its windows closed (faust-streaming issues #175, #315).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import faust
import numpy as np
from faust.types import TP

from envirostream.metrics import PipelineMetrics
from envirostream.settings import Settings
from producers.kafka_out import RecordProducer
from schemas import AvroCodec, DecodeError
from sinks.ddl import TABLES
from sinks.writer import ClickHouseWriter, RowBuffer
from streams.readings import DeadLetter, InputRecord, ReadingsProcessor, Source
from topics import AGGREGATES, DLQ, READINGS

__all__ = ["PipelineWorker", "create_app"]

log = logging.getLogger(__name__)

AGGREGATE = "WindowAggregate"


class PipelineWorker:
    """State and I/O of one worker process; the Faust agents call into it."""

    def __init__(
        self,
        settings: Settings,
        codec: AvroCodec,
        writer: ClickHouseWriter,
        producer: RecordProducer,
        metrics: PipelineMetrics,
        commit: Callable[[dict[TP, int]], Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.codec = codec
        self.writer = writer
        self.producer = producer
        self.metrics = metrics
        self._commit = commit
        self._clock = clock
        self.processor = ReadingsProcessor(
            codec,
            window_ms=settings.window_ms,
            lateness_ms=settings.lateness_ms,
            window_label=settings.window_label,
            late_policy=settings.late_policy,
        )
        self.aggregates = RowBuffer(TABLES["aggregates"])
        self.agg_next: dict[Source, int] = {}
        self.committed: dict[Source, int] = {}
        self.last_input: dict[Source, float] = {}
        self.lock = asyncio.Lock()
        self._last_commit = 0.0

    # -- readings -----------------------------------------------------------------------
    async def on_readings(self, batch: Sequence[InputRecord]) -> None:
        async with self.lock:
            result = self.processor.process(batch)
            now = time.monotonic()
            for src in {r.source for r in batch}:
                self.last_input[src] = now
            self.metrics.readings_consumed.inc(result.consumed)
            self.metrics.late_readings.inc(result.late)
            self._send_dead_letters(result.dead_letters)
            self._send_aggregates(result.aggregates)
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

    # -- aggregates sink ----------------------------------------------------------------
    async def on_aggregates(self, batch: Sequence[InputRecord]) -> None:
        async with self.lock:
            decoded = self.codec.decode_batch(AGGREGATE, [r.value or b"" for r in batch])
            cols: list[list[Any]] = [[] for _ in TABLES["aggregates"].columns]
            names = TABLES["aggregates"].column_names
            bad: list[DeadLetter] = []
            first: dict[Source, int] = {}
            for rec, item in zip(batch, decoded, strict=True):
                self.agg_next[rec.source] = rec.offset + 1
                if isinstance(item, DecodeError):
                    bad.append(DeadLetter(rec, "decode_error", str(item), "sink"))
                    continue
                first.setdefault(rec.source, rec.offset)
                for col, name in zip(cols, names, strict=True):
                    col.append(item[name])
            self._send_dead_letters(bad)
            if cols[0]:
                (src0, off0), *others = first.items()
                self.aggregates.extend(cols, src0, off0)
                for src, off in others:
                    self.aggregates.hold(src, off)
            await self._maybe_flush_and_commit(force=False)

    # -- flushing and committing --------------------------------------------------------
    async def tick(self) -> None:
        """Time-driven work: idle windows, time-bound flushes, commits."""
        if self.lock.locked():
            return  # a batch is being handled; it flushes and commits itself
        async with self.lock:
            now = time.monotonic()
            idle = [
                src
                for src, seen in self.last_input.items()
                if now - seen >= self.settings.idle_close_seconds
            ]
            if idle:
                self._send_aggregates(self.processor.close_all(idle))
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
            await self._flush_table(
                self.processor.readings,
                lambda cols: now_s - np.asarray(cols[0], dtype=float) / 1000.0,
            )
        if force or self.aggregates.due(s.sink_batch_rows, s.sink_batch_seconds):
            await self._flush_table(
                self.aggregates, lambda cols: now_s - np.asarray(cols[1], dtype=float) / 1000.0
            )
        self.metrics.windows_open.set(self.processor.open_windows())
        if not force and time.monotonic() - self._last_commit < s.commit_interval_seconds:
            return
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
        for src, nxt in self.agg_next.items():
            pending = self.aggregates.pending_from.get(src)
            off = nxt if pending is None else min(nxt, pending)
            if off > self.committed.get(src, -1):
                offsets[TP(*src)] = off
        if offsets:
            await self._commit(offsets)
            for tp, off in offsets.items():
                self.committed[(tp.topic, tp.partition)] = off
        self._last_commit = time.monotonic()

    def forget(self, tps: Sequence[TP]) -> None:
        sources = [(tp.topic, tp.partition) for tp in tps]
        self.processor.forget(sources)
        for src in sources:
            self.agg_next.pop(src, None)
            self.committed.pop(src, None)
            self.last_input.pop(src, None)
            self.aggregates.pending_from.pop(src, None)


def _records(events: Sequence[Any]) -> list[InputRecord]:
    return [
        InputRecord(m.topic, m.partition, m.offset, m.key, m.value)
        for m in (e.message for e in events)
    ]


def create_app(
    settings: Settings, build_worker: Callable[[faust.App], PipelineWorker]
) -> faust.App:
    """The Faust app; ``build_worker`` makes the worker state once the app exists."""
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap_servers}",
        store="memory://",
        web_enabled=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        broker_max_poll_records=settings.worker_batch_size,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        datadir=str(settings.data_dir / "faust"),
    )
    readings = app.topic(READINGS, value_serializer="raw", key_serializer="raw", acks=False)
    aggregates = app.topic(AGGREGATES, value_serializer="raw", key_serializer="raw", acks=False)
    holder: dict[str, PipelineWorker] = {}

    def worker() -> PipelineWorker:
        if "w" not in holder:
            holder["w"] = build_worker(app)
        return holder["w"]

    @app.agent(readings)
    async def process_readings(stream: Any) -> None:
        w = worker()
        async for events in stream.take_events(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        ):
            await w.on_readings(_records(events))

    @app.agent(aggregates)
    async def sink_aggregates(stream: Any) -> None:
        w = worker()
        async for events in stream.take_events(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        ):
            await w.on_aggregates(_records(events))

    @app.timer(interval=0.5)
    async def housekeeping() -> None:
        await worker().tick()

    async def on_revoked(app: faust.App, revoked: set[TP], **kwargs: Any) -> None:
        worker().forget(sorted(revoked))

    app.on_partitions_revoked.connect(on_revoked)  # type: ignore[arg-type]

    return app
