"""The detection stage: the registered signals run over every reading, one alert per device.

Pure (no Kafka, no clock): :class:`DetectionStage` is fed every reading the readings
processor accepted, in partition-offset order. It keeps the per-device state
(:class:`~streams.signals.base.DeviceState`), runs the signals of
:data:`streams.signals.SIGNALS` on each reading, turns their findings into ``AnomalyScore``
records and alert observations (:class:`~streams.alert_book.AlertBook`), checkpoints the
devices it changed, and applies operator feedback through the signal that raised a score.
See ``streams.detection`` for what the signals look for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from streams.alert_book import AlertBook
from streams.alerts import AlertPolicy
from streams.detect.rules import STATE_CAPABILITIES, value_verdict
from streams.detection_output import DetectionOutput
from streams.device_snapshot import (
    CHECKPOINT_VERSION,
    SnapshotRejected,
    decode_device,
    encode_device,
)
from streams.signal_states import SignalStates
from streams.signals import SIGNALS
from streams.signals.base import (
    DeviceKey,
    DeviceState,
    Finding,
    ReadingView,
    ScorePoint,
    Signal,
    route_feedback,
    signal_thresholds,
)
from streams.signals.config import DetectionConfig
from streams.signals.offline import OfflineWatch

if TYPE_CHECKING:
    from core.records import Source
    from schemas.reading_columns import ReadingColumns
    from streams.alerts import AlertState

__all__ = ["CHECKPOINT_VERSION", "DetectionOutput", "DetectionStage"]


class DetectionStage:
    """Per-reading detection and alert deduplication for the partitions of one worker."""

    def __init__(
        self,
        config: DetectionConfig | None = None,
        *,
        policy: AlertPolicy | None = None,
        warmup: int | None = None,
        threshold: float | None = None,
        score_sample_every: int | None = None,
        signals: Sequence[type[Signal]] = SIGNALS,
    ) -> None:
        self.config = (config or DetectionConfig()).with_overrides(
            warmup=warmup, threshold=threshold, score_sample_every=score_sample_every
        )
        self.policy = policy or AlertPolicy()
        self.signals: tuple[Signal, ...] = tuple(
            cls(self.config) for cls in signals if cls.enabled(self.config)
        )
        # the hooks, bound once: a reading passes through every one of them
        self._on_device = tuple(s.on_device for s in self.signals if s.implements("on_device"))
        self._on_late = tuple(s.on_device for s in self.signals if s.counts_late)
        self._on_reading = tuple(s.on_reading for s in self.signals if s.implements("on_reading"))
        self.states = SignalStates(self.signals, self.config)
        # one view refilled for every reading (the hooks never keep it): no allocation
        self._view = ReadingView.__new__(ReadingView)
        self.offline = OfflineWatch(self.config)  # silent devices, given the wall clock
        self.book = AlertBook(self.policy, self.offline.interval_ms, self.config.quiet_intervals)
        self.devices: dict[DeviceKey, DeviceState] = {}
        self.device_source: dict[DeviceKey, Source] = {}
        # changed since their last checkpoint, the longest-changed first (insertion order)
        self.dirty: dict[DeviceKey, None] = {}
        self.watermark: dict[Source, int] = {}  # event time, run on by idle()
        self.event_time: dict[Source, int] = {}  # the largest event time seen per partition
        self.out = DetectionOutput()
        self.rejected: list[tuple[bytes, SnapshotRejected]] = []  # by load_checkpoint

    @property
    def alerts(self) -> dict[str, AlertState]:
        """The alerts held, by alert key."""
        return self.book.alerts

    @property
    def open_alerts(self) -> dict[str, DeviceKey]:
        """The alert keys not RESOLVED, with their device."""
        return self.book.open_alerts

    # -- per reading --------------------------------------------------------------------
    def observe(self, src: Source, reading: Mapping[str, Any]) -> None:
        """One accepted reading (decoded ``UniversalSensorReading``), in offset order."""
        self._observe(src, self._view.fill(reading), reading.get("quality"))

    def observe_at(self, src: Source, cols: ReadingColumns, i: int) -> None:
        """:meth:`observe` of item ``i`` of a batch's columns."""
        self._observe(src, self._view.fill_at(cols, i), cols.quality[i])

    def _observe(self, src: Source, r: ReadingView, quality: str | None) -> None:
        ts, device, dtype = r.ts, r.device, r.device_type
        wm = self.watermark.get(src)
        if wm is None or ts > wm:
            self.watermark[src] = ts
        last = self.event_time.get(src)
        if last is None or ts > last:
            self.event_time[src] = ts
        self.device_source[device] = src
        self.offline.observe(device, ts)
        if device in self.book.offline:  # its DEVICE_OFFLINE alert resolves
            self.book.back_online(self.out, device, ts)
        dev = self.devices.get(device)
        # The wall-clock time rules of assess_reading are not applied: replays and
        # accelerated simulations carry event times far from the clock.
        verdict, reason = value_verdict(
            r.capability, r.value, dtype, dev.device_type if dev is not None else None
        )
        if dev is None or reason == "device_type_changed":
            dev = self.devices[device] = DeviceState(dtype)  # a new warm-up
            self.states.complete(dev)
        self.dirty[device] = None
        if ts > dev.last_seen:
            dev.last_seen = ts
        for on_device in self._on_device:
            found = on_device(r, dev)
            if found:
                self._emit(r, found)
        if verdict != "OK":
            self.out.suspect += 1
            if reason == "out_of_physical_range":
                return  # not a real measurement: no alert, no score, no learning
        for on_reading in self._on_reading:
            found = on_reading(r, dev)
            if found:
                self._emit(r, found)
        if r.capability in STATE_CAPABILITIES:
            return
        ser = dev.series.get(r.series)
        if ser is None:
            ser = dev.series[r.series] = self.states.new_series(dtype, r.capability)
        learn = verdict == "OK" and quality == "GOOD" and ts > ser.last_ts
        hooks = ser.hooks
        if hooks is None:
            hooks = ser.hooks = self.states.hooks(ser)
        for on_series in hooks:
            found = on_series(r, dev, ser, learn=learn)
            if found:
                self._emit(r, found)
        if learn:
            ser.last_ts = ts

    def _emit(self, r: ReadingView, found: Sequence[Finding]) -> None:
        for f in found:
            if isinstance(f, ScorePoint):  # an ``AnomalyScore`` (flagged ones counted)
                if f.flagged:
                    self.out.anomaly_counts[(f.detector, r.device_type)] += 1
                self.out.anomalies.append(f.record(r))
                continue
            src = self.device_source.get(r.device)
            wm = self.watermark.get(src) if src is not None else None
            self.book.observe(self.out, r.device, r.device_type, f, wm)

    def observe_late(self, src: Source, reading: Mapping[str, Any]) -> None:
        """A reading its device's windows had passed: not scored, but signals that count
        every reading (sequence gaps) see it, so a gateway's flush leaves no false gap."""
        dev = self.devices.get((reading["tenant_id"], reading["device_id"]))
        if dev is not None:
            r = self._view.fill(reading)
            for on_late in self._on_late:
                if found := on_late(r, dev):
                    self._emit(r, found)

    # -- event time ---------------------------------------------------------------------
    def tick(self, sources: Iterable[Source]) -> None:
        """Resolve the quiet alerts of devices last seen on ``sources`` (end of a batch)."""
        wanted = set(sources)
        for key, device in list(self.book.open_alerts.items()):
            src = self.device_source.get(device)
            if src is not None and src in wanted:
                self.book.resolve_quiet(self.out, key, self.book.alerts[key], self.watermark[src])

    def idle(self, src: Source, idle_ms: int) -> None:
        """``src`` had no input for ``idle_ms`` (wall clock): its watermark runs on by as much
        and quiet alerts resolve (``resolved_at`` = ``last_seen + quiet period``)."""
        last = self.event_time.get(src)
        if last is None:
            return
        target = last + max(idle_ms, 0)
        if target > self.watermark.get(src, target - 1):
            self.watermark[src] = target
            self.tick([src])

    def silence(self, now_s: float) -> None:
        """Wall clock ``now_s`` (s): a device silent too long opens its DEVICE_OFFLINE alert."""
        for s in self.offline.silent(now_s, self.devices):
            dtype = self.devices[s.device].device_type
            self.book.offline_alert(self.out, s.device, dtype, s.candidate())

    def expire(self, src: Source, ttl_ms: int) -> list[tuple[Source, bytes]]:
        """Forget the devices of ``src`` silent for ``ttl_ms`` of its event time (models and
        resolved alert; kept while an alert is open); returns the changelog tombstone keys."""
        wm = self.watermark.get(src)
        if wm is None:
            return []
        open_devices = self.book.open_alerts.values()
        gone = _silent(self.devices, self.device_source, src, wm - ttl_ms, open_devices)
        for device in gone:
            del self.devices[device]
            del self.device_source[device]
            self.dirty.pop(device, None)
            self.book.drop_device(device)
        return [(src, f"{t}/{d}".encode()) for t, d in gone]

    def take(self) -> DetectionOutput:
        """What was produced since the last call."""
        out, self.out = self.out, DetectionOutput()
        return out

    # -- operator feedback --------------------------------------------------------------
    def feedback(self, alert_id: str, kind: str, now_ms: int) -> bool:
        """Apply ``ack`` or ``false_positive`` to the alert ``alert_id`` if held here (returns
        whether it is). A false positive offers each ``score:…`` attribute of the alert to the
        signals: the one that wrote it raises its threshold (``adapt_threshold``)."""
        state = self.book.find(alert_id)
        if state is None:
            return False
        changed = self.book.feedback(self.out, state, kind, now_ms)
        if kind == "false_positive" and changed:
            device = (state.tenant_id, state.device_id)
            dev = self.devices.get(device)
            if dev is not None:
                for attr, score in state.attributes.items():
                    if attr.startswith("score:"):
                        route_feedback(self.signals, dev, attr, float(score))
                self.dirty[device] = None
        return True

    def thresholds(self, device: DeviceKey) -> dict[str, float]:
        """Thresholds raised by feedback: by sensor, ``likelihood:{sensor}``, ``window``."""
        dev = self.devices.get(device)
        return {} if dev is None else signal_thresholds(self.signals, dev)

    # -- checkpoints --------------------------------------------------------------------
    def checkpoint(
        self,
        sources: Iterable[Source] | None = None,
        limit: int | None = None,
        devices: Iterable[DeviceKey] | None = None,
    ) -> list[tuple[Source, bytes, bytes]]:
        """``(source, key, value)`` changelog records of the devices changed since their last
        checkpoint: all, or only those last seen on ``sources``, the ``limit`` changed the
        longest ago, or ``devices`` (``source``: the input partition of their readings)."""
        wanted = None if sources is None else set(sources)
        out: list[tuple[Source, bytes, bytes]] = []
        changed = list(self.dirty) if devices is None else [d for d in devices if d in self.dirty]
        for device in changed:
            if limit is not None and len(out) >= limit:
                break
            src = self.device_source.get(device)
            if wanted is not None and src not in wanted:
                continue
            del self.dirty[device]
            dev = self.devices.get(device)
            if dev is None or src is None:
                continue
            out.append((src, f"{device[0]}/{device[1]}".encode(), encode_device(dev, self.signals)))
        return out

    def load_checkpoint(
        self, records: Iterable[tuple[bytes, bytes]], source: Source | None = None
    ) -> int:
        """Restore devices not held in memory from changelog records of readings partition
        ``source``; returns how many. Refused ones go to :attr:`rejected` (they warm up)."""
        n = 0
        for key, value in records:
            tenant, _, device_id = key.decode(errors="replace").partition("/")
            device = (tenant, device_id)
            if device in self.devices:
                continue
            try:
                dev = decode_device(value, self.signals)
            except SnapshotRejected as e:
                self.rejected.append((key, e))
                continue
            self.states.complete(dev)
            self.devices[device] = dev
            if source is not None:
                self.device_source[device] = source
            n += 1
        return n

    # -- restart and rebalance ----------------------------------------------------------
    def restore(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Load the latest ``Alert`` record per key for keys not held in memory."""
        return self.book.restore(records)

    def forget(self, sources: Iterable[Source]) -> None:
        """Drop the state of partitions no longer owned (their new owner restores it), and
        alerts of devices not seen on one still owned (a :meth:`restore` reads them back)."""
        gone = set(sources)
        for src in gone:
            self.watermark.pop(src, None)
            self.event_time.pop(src, None)
        kept = {d for d, s in self.device_source.items() if s not in gone}
        self.device_source = {d: self.device_source[d] for d in kept}
        self.devices = {k: v for k, v in self.devices.items() if k in kept}
        self.dirty = {d: None for d in self.dirty if d in kept}
        self.book.keep_devices(kept)


def _silent(
    devices: Mapping[DeviceKey, DeviceState],
    device_source: Mapping[DeviceKey, Source],
    src: Source,
    cutoff_ms: int,
    keep: Iterable[DeviceKey],
) -> list[DeviceKey]:
    """The devices of partition ``src`` last seen before ``cutoff_ms``, but those in ``keep``."""
    kept = set(keep)
    return [
        d
        for d, s in device_source.items()
        if s == src and d in devices and devices[d].last_seen < cutoff_ms and d not in kept
    ]
