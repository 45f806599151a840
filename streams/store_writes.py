"""Writing the worker's buffered rows to the store: retries, latency, window corrections.

:class:`StoreWrites` flushes the tables of a :class:`sinks.base.BatchingSink` when the
worker asks it to. A failing store is retried with backoff, never a crash: rows, and the
input offsets they hold, stay buffered (docs/design.md, "Outages"). Each write observes
the event-to-sink latency of its rows. Windows that late readings changed are recomputed
from the stored readings after the readings flush that holds them, and re-emitted. The
worker's lock is held by the caller.

With ``ENVIROSTREAM_SINK_PIPELINED`` (the default) a round of writes runs in the
background while the worker goes on with its input: the round takes the due tables' rows
(:meth:`sinks.base.BatchingSink.begin_flush`), and their input offsets, and the windows to
correct, stay held until it ends, so a commit meanwhile never passes them. The tables
write in two lanes, one round at a time in each: the readings (with the windows they
correct), and the other tables. So a tick's readings never wait behind the minute's
aggregates and their rollup refresh. A flush asked for while a lane's round runs leaves
that lane's tables for the next call; a forced one waits for both lanes, then writes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np

from core.metrics import PipelineMetrics
from core.records import Source
from core.settings import Settings
from sinks.base import BatchingSink, SinkBatch, StoredWindows, WindowRef
from streams.corrections import WindowCorrections
from streams.intake import STORED_TOPICS
from streams.outage import Outage
from streams.outputs import Outputs

__all__ = ["EVENT_TIME", "READINGS_TABLE", "StoreWrites"]

READINGS_TABLE = "readings"
# Per table, the column with the event time (epoch ms) for the event-to-sink latency.
EVENT_TIME = {READINGS_TABLE: "ts", **{s.table: s.event_time for s in STORED_TOPICS}}


def _lane(table: str) -> int:
    """The lane of ``table``'s writes: 0 for the readings, 1 for every other table."""
    return 0 if table == READINGS_TABLE else 1


class StoreWrites:
    """Flushes the sink's tables for one worker, through outages of the store."""

    def __init__(
        self,
        settings: Settings,
        sink: BatchingSink,
        corrections: WindowCorrections,
        outputs: Outputs,
        metrics: PipelineMetrics,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.corrections = corrections
        self.outputs = outputs
        self.metrics = metrics
        self.outage = Outage(
            "the store",
            initial=settings.sink_retry_initial_seconds,
            cap=settings.sink_retry_max_seconds,
            waiting="inserts are retried",
        )
        # the writes in the background: one round per lane (_lane), or none
        self._rounds: dict[int, asyncio.Task[None]] = {}

    def due(self) -> Sequence[str]:
        """The tables whose rows reached ``ENVIROSTREAM_SINK_BATCH_ROWS`` or
        ``ENVIROSTREAM_SINK_BATCH_SECONDS`` of age."""
        s = self.settings
        return self.sink.due(s.sink_batch_rows, s.sink_batch_seconds)

    async def flush(self, now_s: float, *, force: bool) -> None:
        """Write the due tables (all when ``force``), unless the store is in its backoff;
        the readings first when windows wait to be corrected. A failure stops the round:
        the other tables wait for the next attempt. Pipelined, each lane's round runs in
        the background (none starts in a lane while one runs there); ``force`` waits for
        both and writes."""
        if force and self.writing():
            await self.settle()
        self._ended()
        if not (force or self.outage.ready()):
            return
        due = self.sink.tables if force else self.due()
        if self.corrections.pending and READINGS_TABLE not in due:
            due = [READINGS_TABLE, *due]  # windows to correct wait on that flush
        if force or not self.settings.sink_pipelined:
            if due:
                await self._write_round(due, now_s)
            return
        for lane in (0, 1):
            tables = [t for t in due if _lane(t) == lane]
            if tables and lane not in self._rounds:
                self._rounds[lane] = asyncio.create_task(self._write_round(tables, now_s))

    def writing(self) -> bool:
        """Whether a round of writes runs in the background (in either lane)."""
        return any(not r.done() for r in self._rounds.values())

    def startable(self) -> bool:
        """Whether a due table's lane has no round running (a flush would write it)."""
        running = {lane for lane, r in self._rounds.items() if not r.done()}
        return any(_lane(t) not in running for t in self.due())

    async def settle(self, timeout: float | None = None) -> None:
        """Wait for the rounds of writes in the background, if any (their rows durable or
        put back to wait); raises what a round raised (a fault, not a failed write)."""
        rounds = list(self._rounds.values())
        if not rounds:
            return
        try:
            gathered = asyncio.gather(*rounds, return_exceptions=True)
            await asyncio.wait_for(asyncio.shield(gathered), timeout)
        finally:
            self._ended()  # what a round raised is raised here, once

    def _ended(self) -> None:
        """Forget the ended rounds; a fault in one (not a failed write) is raised here."""
        ended = [(lane, r) for lane, r in self._rounds.items() if r.done()]
        for lane, _ in ended:
            del self._rounds[lane]
        for _, round_ in ended:
            round_.result()

    async def _write_round(self, due: Sequence[str], now_s: float) -> None:
        t0 = time.monotonic()
        for table in due:  # each table's own start time (wall clock)
            if not await self.flush_table(table, now_s + time.monotonic() - t0):
                break

    def backlogged(self) -> bool:
        """True when more rows wait than ``ENVIROSTREAM_SINK_MAX_BUFFERED_ROWS`` (the
        consumer loop stops fetching until they are stored)."""
        waiting = sum(self.sink.buffered(t) for t in self.sink.tables)
        return waiting > self.settings.sink_max_buffered_rows

    async def flush_table(self, table: str, now_s: float) -> bool:
        """Write ``table``'s rows, starting at wall time ``now_s``; False when the write
        failed (rows and offsets kept)."""
        started = time.monotonic()
        if not self.outage.up:
            self.metrics.sink_retries.labels(table).inc()
        late = self.corrections.take() if table == READINGS_TABLE else {}
        batch = self.sink.begin_flush(table)
        try:
            if batch.rows:
                await asyncio.to_thread(self.sink.write, batch)
        except Exception as exc:
            self.sink.end_flush(batch, ok=False)
            self.corrections.restore(late)
            self.metrics.sink_errors.labels(table).inc()
            self.metrics.sink_up.set(0)
            self.outage.failed(exc)
            return False
        except BaseException:  # cancelled: the rows wait for the next round
            self.sink.end_flush(batch, ok=False)
            self.corrections.restore(late)
            raise
        self.sink.end_flush(batch, ok=True)
        took = time.monotonic() - started  # the rows are stored (corrections come after)
        if self.outage.succeeded():
            self.metrics.sink_up.set(1)
        try:  # counted even if a correction fails next
            self._stored(batch, table, now_s, took)
        except BaseException:
            self.corrections.restore(late)
            raise
        if late and not await self._correct(late):
            return False
        self.corrections.done(late)
        return True

    def _stored(self, batch: SinkBatch, table: str, now_s: float, took: float) -> None:
        """Count the rows of ``batch``, stored by a write that took ``took`` s from wall time
        ``now_s``, and release them (a driver's reference cycle may still hold the batch)."""
        self.metrics.sink_batch_duration.labels(table).observe(took)
        self.metrics.sink_rows.labels(table).inc(batch.rows)
        if (column := EVENT_TIME.get(table)) is not None:  # stored when the write ended
            event_ms = np.asarray(batch.column(column) if batch.rows else [], dtype=float)
            self.metrics.event_to_sink.observe_many(table, now_s + took - event_ms / 1000.0)
        batch.release()

    async def _correct(self, late: dict[Source, dict[WindowRef, int]]) -> bool:
        """Re-emit the windows late readings changed, recomputed from the stored readings;
        False (the windows kept for the next attempt) when the store failed."""
        assert isinstance(self.sink, StoredWindows)  # late windows only come with one
        refs = sorted({ref for refs in late.values() for ref in refs})
        try:
            stats = await asyncio.to_thread(
                self.sink.recompute_windows, self.settings.window_ms, refs
            )
        except Exception as exc:
            self.corrections.restore(late)
            self.metrics.sink_up.set(0)
            self.outage.failed(exc)
            return False
        except BaseException:  # cancelled: corrected on the next round
            self.corrections.restore(late)
            raise
        try:
            records = self.corrections.records(stats)
            self.outputs.send_aggregates(records)
        except BaseException:  # not sent: held, and corrected by a later round
            self.corrections.restore(late)
            raise
        self.metrics.windows_corrected.inc(len(records))
        return True
