"""The detection stage of the readings path: safety limits, per-series scores, alert dedup.

Pure (no Kafka, no clock): :class:`DetectionStage` is fed every reading the readings
processor accepted, in partition-offset order, and collects what must be produced:

* ``AnomalyScore`` records (``telemetry.anomalies``): every score with ``is_anomaly`` set,
  plus, when ``score_sample_every`` > 0, every n-th score of a series (bounded volume);
* ``Alert`` records (``telemetry.alerts``): state changes of the deduplicated alerts
  (``streams.alerts``). Only static safety limits (``streams.detect.rules``) raise alerts in
  this slice; learned-model anomalies are scored, not alerted.

Time is event time. Each input partition has a *detection watermark*: the largest event
time seen on it. An alert is resolved once its partition's watermark is ``quiet_period``
past its ``last_seen``, with ``resolved_at = last_seen + quiet_period`` (the same record
whatever the batch boundaries, so a replay produces it identically).

Restart safety: :meth:`DetectionStage.restore` loads the latest ``Alert`` record per key (read
back from ``telemetry.alerts``); observations at or before an alert's ``last_seen`` are
ignored by ``advance_alert``, so replayed readings neither re-send nor double-count. The
detectors are not checkpointed: after a restart they warm up again (a known gap).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from streams.alerts import (
    AlertPolicy,
    AlertState,
    Observation,
    advance_alert,
    alert_key,
    tick_alert,
)
from streams.detect.rules import Breach, assess_reading, check_limits
from streams.detect.univariate import SeasonalZScore

if TYPE_CHECKING:
    from envirostream.settings import Settings

__all__ = ["DetectionOutput", "DetectionStage", "detection_stage_from_settings", "limit_rule"]

Source = tuple[str, int]
SeriesKey = tuple[str, str, str]  # (tenant, device, capability)
DeviceKey = tuple[str, str]  # (tenant, device)


def limit_rule(capability: str, breach: Breach) -> str:
    """The alert rule of a safety-limit breach: one per capability and direction.

    The WARNING and CRITICAL limits of one direction share the rule, so a value rising
    through both is one alert that escalates, not two alerts.

    >>> from streams.detect.rules import check_limits
    >>> limit_rule("CELL_TEMPERATURE", check_limits("BATTERY_PACK", "CELL_TEMPERATURE", 61.0))
    'limit:CELL_TEMPERATURE:high'
    """
    side = "high" if breach.limit.direction == "above" else "low"
    return f"limit:{capability}:{side}"


@dataclass
class DetectionOutput:
    """What one batch produced, and the counts for the metrics."""

    anomalies: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    anomaly_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)  # by severity (lower case)
    suspect: int = 0


class DetectionStage:
    """Per-reading detection and alert deduplication for the partitions of one worker."""

    def __init__(
        self,
        *,
        warmup: int,
        threshold: float = 6.0,
        policy: AlertPolicy | None = None,
        score_sample_every: int = 0,
    ) -> None:
        if score_sample_every < 0:
            msg = f"score_sample_every must be >= 0, got {score_sample_every}"
            raise ValueError(msg)
        self.warmup = warmup
        self.threshold = threshold
        self.policy = policy or AlertPolicy()
        self.score_sample_every = score_sample_every
        self.detectors: dict[SeriesKey, SeasonalZScore] = {}
        self.device_types: dict[DeviceKey, str] = {}
        self.device_source: dict[DeviceKey, Source] = {}
        self.watermark: dict[Source, int] = {}
        self.alerts: dict[str, AlertState] = {}
        self.open_alerts: dict[str, DeviceKey] = {}  # alert keys not RESOLVED
        self.out = DetectionOutput()

    # -- per reading --------------------------------------------------------------------
    def observe(self, src: Source, reading: Mapping[str, Any]) -> None:
        """One accepted reading (decoded ``UniversalSensorReading``), in offset order."""
        ts: int = reading["timestamp"]
        value: float = reading["value"]
        cap: str = reading["capability"]
        dtype: str = reading["device_type"]
        device: DeviceKey = (reading["tenant_id"], reading["device_id"])
        wm = self.watermark.get(src)
        if wm is None or ts > wm:
            self.watermark[src] = ts
        self.device_source[device] = src
        # The wall-clock time rules of assess_reading are not applied (now_ms = ts):
        # replays and accelerated simulations carry event times far from the clock.
        verdict, reason = assess_reading(
            capability=cap,
            value=value,
            ts_ms=ts,
            now_ms=ts,
            device_type=dtype,
            known_device_type=self.device_types.get(device),
        )
        if reason == "device_type_changed":
            self._reset_device(device)
        self.device_types[device] = dtype
        if verdict != "OK":
            self.out.suspect += 1
            if reason == "out_of_physical_range":
                return  # not a real measurement: no alert, no score, no learning
        breach = check_limits(dtype, cap, value)
        if breach is not None:
            obs = Observation(
                tenant_id=device[0],
                device_id=device[1],
                rule=limit_rule(cap, breach),
                severity=breach.severity,
                ts_ms=ts,
                device_type=dtype,
                capability=cap,
                summary=f"{cap} {value:g} breaches {breach.rule} ({breach.severity})",
            )
            self._observe_alert(obs)
        self._score(src, reading, learn=verdict == "OK" and reading.get("quality") == "GOOD")

    def _score(self, src: Source, reading: Mapping[str, Any], *, learn: bool) -> None:
        key: SeriesKey = (reading["tenant_id"], reading["device_id"], reading["capability"])
        det = self.detectors.get(key)
        if det is None:
            det = self.detectors[key] = SeasonalZScore(warmup=self.warmup, threshold=self.threshold)
        ts: int = reading["timestamp"]
        value: float = reading["value"]
        n = det.n_learned
        s = det.process_one(value, ts, learn=learn)
        sampled = self.score_sample_every > 0 and s.warm and n % self.score_sample_every == 0
        if not (s.is_anomaly or sampled):
            return
        if s.is_anomaly:
            self.out.anomaly_counts[(s.detector, reading["device_type"])] += 1
        self.out.anomalies.append(
            {
                "ts": ts,
                "tenant_id": key[0],
                "device_id": key[1],
                "device_type": reading["device_type"],
                "capability": key[2],
                "detector": s.detector,
                "score": s.score,
                "threshold": s.threshold,
                "value": value,
                "is_anomaly": s.is_anomaly,
                "reading_id": reading.get("reading_id") or "",
            }
        )

    def _reset_device(self, device: DeviceKey) -> None:
        for key in [k for k in self.detectors if k[:2] == device]:
            del self.detectors[key]

    # -- alerts -------------------------------------------------------------------------
    def _observe_alert(self, obs: Observation) -> None:
        key = alert_key(obs.tenant_id, obs.device_id, obs.rule)
        state = self.alerts.get(key)
        if state is not None:
            src = self.device_source.get((obs.tenant_id, obs.device_id))
            wm = self.watermark.get(src) if src is not None else None
            if wm is not None:
                state = self._tick(key, state, wm)
        dups = state.duplicates if state is not None else 0
        new, record = advance_alert(state, obs, self.policy)
        self.alerts[key] = new
        if new.state != "RESOLVED":
            self.open_alerts[key] = (obs.tenant_id, obs.device_id)
        if record is not None:
            self.out.alerts.append(record)
        elif new.duplicates > dups:
            self.out.suppressed[new.severity.lower()] += 1

    def _tick(self, key: str, state: AlertState, watermark: int) -> AlertState:
        if state.state == "RESOLVED":
            return state
        # resolved_at = last_seen + quiet period: independent of when the tick runs
        now = min(watermark, state.last_seen + self.policy.quiet_period_ms)
        new, record = tick_alert(state, now, self.policy)
        if record is not None:
            self.alerts[key] = new
            self.open_alerts.pop(key, None)
            self.out.alerts.append(record)
        return new

    def tick(self, sources: Iterable[Source]) -> None:
        """Resolve the quiet alerts of devices last seen on ``sources`` (end of a batch)."""
        wanted = set(sources)
        for key, device in list(self.open_alerts.items()):
            src = self.device_source.get(device)
            if src in wanted:
                self._tick(key, self.alerts[key], self.watermark[cast(Source, src)])

    def take(self) -> DetectionOutput:
        """What was produced since the last call."""
        out, self.out = self.out, DetectionOutput()
        return out

    # -- restart and rebalance ----------------------------------------------------------
    def restore(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Load the latest ``Alert`` record per key for keys not held in memory."""
        n = 0
        for rec in records:
            key = str(rec["alert_key"])
            if key in self.alerts:
                continue
            state = AlertState(
                alert_id=rec["alert_id"],
                alert_key=key,
                tenant_id=rec["tenant_id"],
                device_id=rec["device_id"],
                device_type=rec["device_type"],
                capability=rec["capability"],
                rule=rec["rule"],
                severity=rec["severity"],
                state=rec["state"],
                first_seen=rec["first_seen"],
                last_seen=rec["last_seen"],
                last_sent=rec["last_seen"],
                resolved_at=rec.get("resolved_at"),
                duplicates=rec.get("duplicates", 0),
                summary=rec.get("summary", ""),
                version=rec.get("version", 1),
                attributes=dict(rec.get("attributes") or {}),
            )
            self.alerts[key] = state
            if state.state != "RESOLVED":
                self.open_alerts[key] = (state.tenant_id, state.device_id)
            n += 1
        return n

    def forget(self, sources: Iterable[Source]) -> None:
        """Drop the state of partitions no longer owned (their new owner restores it).

        Alerts whose device was not seen on a partition still owned are dropped too: the
        next :meth:`restore` reads them back from ``telemetry.alerts``.
        """
        gone = set(sources)
        for src in gone:
            self.watermark.pop(src, None)
        kept = {d for d, s in self.device_source.items() if s not in gone}
        self.device_source = {d: self.device_source[d] for d in kept}
        self.detectors = {k: v for k, v in self.detectors.items() if k[:2] in kept}
        self.device_types = {k: v for k, v in self.device_types.items() if k in kept}
        self.alerts = {k: v for k, v in self.alerts.items() if (v.tenant_id, v.device_id) in kept}
        self.open_alerts = {k: v for k, v in self.open_alerts.items() if v in kept}


def detection_stage_from_settings(settings: Settings) -> DetectionStage:
    """The detection stage the worker runs, configured from ``settings``.

    One place for this construction: the worker (``streams.app``) and the benchmarks that
    feed readings to the stage directly (``bench.nab --offline``) use it.
    """
    return DetectionStage(
        warmup=settings.detector_warmup,
        threshold=settings.detector_threshold,
        policy=AlertPolicy(
            quiet_period_ms=round(settings.alert_quiet_period_seconds * 1000),
            repeat_interval_ms=round(settings.alert_repeat_interval_seconds * 1000),
        ),
        score_sample_every=settings.anomaly_sample_every,
    )
