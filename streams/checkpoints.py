"""Detector and alert state across restarts and rebalances: checkpoint, restore, expire.

The learned detector state of each device goes to the compacted
``{APP_ID}-detector-state-changelog``, on the partition of the device's readings, and is
loaded when that readings partition is assigned; the alert dedup state is rebuilt from
``telemetry.alerts`` (latest record per alert key). A changelog record that is not a device
state of this worker's format (``streams.device_snapshot``: forged, corrupt, or written by
an older version) is refused: one warning per partition load and
``envirostream_checkpoints_rejected_total``; that device warms up again. Devices silent for
``ENVIROSTREAM_DEVICE_STATE_TTL_HOURS`` are forgotten and tombstoned. Callers hold the
worker's lock; the slow parts (serialising, reading logs back) run in threads so heartbeats
and timers keep running.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from core.metrics import PipelineMetrics
from core.records import Source
from core.settings import Settings
from schemas import AvroCodec
from streams.alert_log import read_latest_alerts, read_latest_state
from streams.detection import DetectionStage
from streams.outputs import Outputs
from streams.signals.base import DeviceKey
from topics import ALERTS, READINGS
from topics.definitions import detector_state_topic

__all__ = ["DetectorCheckpoints", "restored_clocks"]

log = logging.getLogger(__name__)


class DetectorCheckpoints:
    """Saves and restores one worker's detection state through Kafka."""

    def __init__(
        self,
        settings: Settings,
        detection: DetectionStage,
        outputs: Outputs,
        codec: AvroCodec,
        metrics: PipelineMetrics,
    ) -> None:
        self.settings = settings
        self.detection = detection
        self.outputs = outputs
        self.codec = codec
        self.metrics = metrics
        self.state_topic = detector_state_topic(settings)
        self.last_paced = time.monotonic()
        self.credit = 0.0  # devices the pace allows to write now (see paced)
        self.last_expiry = time.monotonic()

    async def restore(self, partitions: Sequence[int]) -> None:
        """State of newly assigned readings ``partitions``: models, then the alert log."""
        await self.restore_models(partitions)
        await self.restore_alerts()

    async def restore_alerts(self) -> int:
        """Rebuild the alert dedup state from ``telemetry.alerts`` (latest per key).

        This worker's own records are flushed first so the log is complete up to now; keys
        held in memory (partitions kept) are not touched.
        """
        await self.outputs.flush(60.0)
        latest = await asyncio.to_thread(read_latest_alerts, self.settings, ALERTS, self.codec)
        n = self.detection.restore(latest.values())
        log.info("alert state restored: %d of %d alert keys in %s", n, len(latest), ALERTS)
        return n

    async def restore_models(self, partitions: Sequence[int]) -> int:
        """Load the checkpointed detector state of the devices on readings ``partitions``.

        Devices held in memory (partitions kept through a rebalance) are not touched; the
        others continue where their last checkpoint left off, without a new warm-up.
        """
        n = 0
        for p in partitions:
            latest = await asyncio.to_thread(
                read_latest_state, self.settings, self.state_topic, [p]
            )
            n += self.detection.load_checkpoint(latest.items(), (READINGS, p))
            self._count_rejected(p)
        self.metrics.detector_restored.inc(n)
        log.info("detector state restored: %d devices from %s", n, self.state_topic)
        return n

    def _count_rejected(self, partition: int) -> None:
        """Count the records of ``partition`` the stage refused, and log them once."""
        rejected, self.detection.rejected = self.detection.rejected, []
        if not rejected:
            return
        reasons = Counter(e.reason for _, e in rejected)
        for reason, count in reasons.items():
            self.metrics.checkpoints_rejected.labels(reason).inc(count)
        key, first = rejected[0]
        log.warning(
            "detector state: refused %d records of %s[%d] (%s), those devices warm up "
            "again; first: key %r: %s",
            len(rejected),
            self.state_topic,
            partition,
            ", ".join(f"{r} {c}" for r, c in sorted(reasons.items())),
            key,
            first,
        )

    async def paced(self, now: float) -> int:
        """Queue a share of the changed devices: at a pace that writes every device about
        once per ``ENVIROSTREAM_DETECTOR_CHECKPOINT_SECONDS``, those changed the longest ago
        first. Called every commit round, so no round serialises the whole fleet at once:
        the input waits for the checkpoint (~1 ms per device), which at 800 devices written
        together was a stall of a second every interval. Returns how many were written."""
        devices = len(self.detection.devices)
        period = self.settings.detector_checkpoint_seconds
        self.credit = min(self.credit + devices * (now - self.last_paced) / period, devices)
        self.last_paced = now
        share = int(self.credit + 1e-9)  # n * (1/n) may fall just short of 1
        if share < 1:
            return 0
        self.credit -= share
        return await self.checkpoint(limit=share)

    async def checkpoint(
        self,
        sources: Sequence[Source] | None = None,
        limit: int | None = None,
        devices: Collection[DeviceKey] | None = None,
    ) -> int:
        """Queue the state of changed devices to the changelog (the commit flushes it): all
        of them, those of ``sources``, the ``limit`` changed the longest ago, or ``devices``.

        Serialising runs in a thread (~1 ms per device, a vehicle's state is ~10 kB
        compressed) so heartbeats and timers keep running.
        """
        records = await asyncio.to_thread(self.detection.checkpoint, sources, limit, devices)
        if records:
            self.outputs.producer.send_batch(
                self.state_topic,
                [key for _, key, _ in records],
                [value for _, _, value in records],
                partitions=[src[1] for src, _, _ in records],
            )
            self.metrics.detector_checkpoints.inc(len(records))
            self.metrics.detector_checkpoint_bytes.inc(sum(len(v) for _, _, v in records))
        return len(records)

    def expire(self, sources: Iterable[Source]) -> int:
        """Drop devices silent for ``ENVIROSTREAM_DEVICE_STATE_TTL_HOURS`` of event time and
        delete their changelog records (tombstones)."""
        ttl_ms = round(self.settings.device_state_ttl_hours * 3_600_000)
        gone = [k for src in list(sources) for k in self.detection.expire(src, ttl_ms)]
        if gone:
            self.outputs.producer.send_batch(
                self.state_topic,
                [key for _, key in gone],
                [None] * len(gone),
                partitions=[src[1] for src, _ in gone],
            )
            log.info("forgot %d devices silent for %s h", len(gone), ttl_ms / 3_600_000)
        self.last_expiry = time.monotonic()
        return len(gone)


def restored_clocks(
    detection: DetectionStage, partitions: Sequence[int]
) -> dict[Source, list[tuple[str, int]]]:
    """``(device_id, latest event time ms)`` of the devices on readings ``partitions`` that
    ``detection`` holds (after :meth:`DetectorCheckpoints.restore_models`), by source."""
    out: dict[Source, list[tuple[str, int]]] = {}
    for key, dev in detection.devices.items():
        src = detection.device_source.get(key)
        if src is not None and src[0] == READINGS and src[1] in partitions:
            out.setdefault(src, []).append((key[1], dev.last_seen))
    return out
