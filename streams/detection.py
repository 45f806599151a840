"""The detection stage of the readings path: rules, learned models, predictions, one alert.

Pure (no Kafka, no clock): :class:`DetectionStage` is fed every reading the readings
processor accepted, in partition-offset order, and collects what must be produced:

* ``AnomalyScore`` records (``telemetry.anomalies``): every score with ``is_anomaly`` set,
  plus, when ``score_sample_every`` > 0, every n-th score of a series (bounded volume);
* ``Alert`` records (``telemetry.alerts``): state changes of the deduplicated alerts.

Signals, per series (one sensor of a device, ``sensor_id``) unless said otherwise:

* **safety limits** (``streams.detect.rules``): a breach is observed at once, no learning;
* **learned anomalies**: the seasonal z-score + Page-Hinkley detector
  (``streams.detect.univariate``) scores every reading; ``persistence`` anomalous readings
  among the last ``persistence_window`` make an ``anomaly:{CAPABILITY}`` observation (one
  noisy reading never pages anyone);
* **predicted failure**: a series with a safety limit feeds its bucket means (``trend_bucket``
  of event time) to a Theil-Sen time-to-limit estimate (``streams.detect.predictive``); a
  crossing predicted inside ``horizon`` on ``trend_confirm`` buckets in a row is a
  ``PREDICTED_FAILURE`` observation carrying the estimated time to failure;
* **sensor health**: a normally varying series repeating one value ``stuck_after`` times
  (``sensor:stuck:{CAPABILITY}``), and, per device, missing ticks (gaps in ``sequence``)
  over ``gap_share`` of the recent ones (``device:gaps``).

All observations of one device share one alert key ``{tenant}/{device}/device``: one incident,
one alert. The alert opens with the first observation and is re-sent when a more serious
rule joins (anomaly < predicted failure < safety limit) or the severity rises; its
``attributes["rules"]`` lists the rules seen.

Time is event time. Each input partition has a *detection watermark*: the largest event
time seen on it. An alert is resolved once its partition's watermark is ``quiet_period``
past its ``last_seen``, with ``resolved_at = last_seen + quiet_period`` (the same record
whatever the batch boundaries, so a replay produces it identically). When a partition has
no input, the worker lets its watermark run on with the wall clock (:meth:`idle`), so the
alerts of devices that fell silent still resolve.

Restart safety: :meth:`DetectionStage.restore` loads the latest ``Alert`` record per key (read
back from ``telemetry.alerts``); observations at or before an alert's ``last_seen`` are
ignored by ``advance_alert``, so replayed readings neither re-send nor double-count. The
per-device model state is checkpointed with :meth:`checkpoint` and reloaded with
:meth:`load_checkpoint` (a compacted changelog topic in the worker); readings at or before a
series' last learned event time are not learned twice.
"""

from __future__ import annotations

import math
import pickle
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from streams.alerts import (
    AlertPolicy,
    AlertState,
    Observation,
    adapt_threshold,
    advance_alert,
    alert_key,
    apply_feedback,
    tick_alert,
)
from streams.detect.likelihood import AnomalyLikelihood
from streams.detect.multivariate import WindowHST, WindowHSTResiduals, WindowMahalanobis
from streams.detect.predictive import TimeToLimit
from streams.detect.rules import (
    OPERATING_STATE,
    SAFETY_LIMITS,
    STATE_CAPABILITIES,
    Breach,
    Limit,
    assess_reading,
    check_limits,
)
from streams.detect.univariate import SeasonalZScore

if TYPE_CHECKING:
    from core.settings import Settings

from core.records import Source

__all__ = [
    "DEVICE_GROUP",
    "LIKELIHOOD_SCOPES",
    "DetectionConfig",
    "DetectionOutput",
    "DetectionStage",
    "detection_stage_from_settings",
    "limit_rule",
]

DeviceKey = tuple[str, str]  # (tenant, device)
DEVICE_GROUP = "device"
_CHECKPOINT_VERSION = 1


LIKELIHOOD_SCOPES = ("off", "generic", "all")
"""Which series the anomaly likelihood judges: none, the ``GENERIC`` ones (replayed data of
an unknown kind, e.g. NAB), or every learned series."""


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


WINDOW_MODELS = ("mahalanobis", "hst")
"""The device window models (``DetectionConfig.window_model``, see :func:`new_window_model`)."""


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """The knobs of the detection stage (settings ``ENVIROSTREAM_DETECTOR_*``)."""

    warmup: int = 300
    threshold: float = 6.0
    persistence: int = 3
    persistence_window: int = 10
    trend_bucket_ms: int = 300_000
    trend_points: int = 24
    horizon_ms: int = 6 * 3_600_000
    trend_confirm: int = 3
    trend_min_deviation: float = 3.0
    stuck_after: int = 30
    gap_share: float = 0.2
    score_sample_every: int = 0
    window: bool = True
    window_warmup: int = 144
    window_threshold: float = 8.0
    window_persistence: int = 2
    window_persistence_window: int = 3
    window_fading: float = 0.01
    window_shrink: float = 0.01
    window_clip: float = 4.0
    window_min_learned: int = 60
    window_settle: int = 3
    window_model: str = "mahalanobis"  # "mahalanobis" or "hst": what scores anomaly:window
    window_hst_threshold: float = 0.956  # healthy p99.9 (calibration fleet, seed 3)
    window_hst_trees: int = 50
    window_hst_height: int = 8
    window_hst_size: int = 288  # windows per HalfSpaceTrees reference window (a day)
    drift_slack: float = 2.0
    drift_threshold: float = 30.0
    likelihood: str = "generic"
    likelihood_threshold: float = 4.0
    likelihood_short: int = 10
    likelihood_warmup: int = 388  # NAB: learning period 288 + 100 estimation samples
    likelihood_history: int = 8_640

    def __post_init__(self) -> None:
        checks = {
            "warmup": self.warmup >= 0,
            "threshold": math.isfinite(self.threshold) and self.threshold > 0,
            "persistence": 1 <= self.persistence <= self.persistence_window,
            "persistence_window": 1 <= self.persistence_window <= 64,
            "trend_bucket_ms": self.trend_bucket_ms > 0,
            "trend_points": self.trend_points >= 4,
            "horizon_ms": self.horizon_ms > 0,
            "trend_confirm": self.trend_confirm >= 1,
            "trend_min_deviation": self.trend_min_deviation >= 0,
            "stuck_after": self.stuck_after >= 2,
            "gap_share": 0 < self.gap_share <= 1,
            "score_sample_every": self.score_sample_every >= 0,
            "window_warmup": self.window_warmup >= 0,
            "window_threshold": math.isfinite(self.window_threshold) and self.window_threshold > 0,
            "window_persistence": 1 <= self.window_persistence <= self.window_persistence_window,
            "window_persistence_window": 1 <= self.window_persistence_window <= 64,
            "window_fading": 0 < self.window_fading < 1,
            "window_shrink": 0 <= self.window_shrink < 1,
            "window_clip": self.window_clip > 0,
            "window_min_learned": self.window_min_learned >= 2,
            "window_settle": self.window_settle >= 0,
            "window_model": self.window_model in WINDOW_MODELS,
            "window_hst_threshold": 0 < self.window_hst_threshold < 1,
            "window_hst_trees": 1 <= self.window_hst_trees <= 200,
            "window_hst_height": 1 <= self.window_hst_height <= 12,
            "window_hst_size": self.window_hst_size >= 2,
            "drift_slack": self.drift_slack >= 0,
            "drift_threshold": math.isfinite(self.drift_threshold) and self.drift_threshold > 0,
            "likelihood": self.likelihood in LIKELIHOOD_SCOPES,
            "likelihood_threshold": math.isfinite(self.likelihood_threshold)
            and self.likelihood_threshold > 0,
            "likelihood_short": self.likelihood_short >= 1,
            "likelihood_warmup": self.likelihood_warmup >= 0,
            "likelihood_history": self.likelihood_history >= 2,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            value = getattr(self, bad[0])
            msg = f"DetectionConfig.{bad[0]} is out of range: {value!r}"
            raise ValueError(msg)


@dataclass
class DetectionOutput:
    """What one batch produced, and the counts for the metrics."""

    anomalies: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    anomaly_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)  # by severity (lower case)
    suspect: int = 0


_NOT_PREDICTED = frozenset({"CELL_VOLTAGE", "VOLTAGE", "BATTERY_VOLTAGE"})
"""Limited capabilities whose normal operation ramps towards the limit and stops short of it
(a charger holds a cell at its end-of-charge voltage): a linear trend would cry wolf at every
charge, so only their limits apply."""


def _trend_limit(device_type: str, capability: str) -> Limit | None:
    """The first-reached limit of a capability (the least severe, e.g. WARNING), if any."""
    if capability in _NOT_PREDICTED:
        return None
    limits = SAFETY_LIMITS.get((device_type, capability), ()) + SAFETY_LIMITS.get(
        ("*", capability), ()
    )
    if not limits:
        return None
    above = [lim for lim in limits if lim.direction == "above"]
    if above:
        return min(above, key=lambda lim: lim.bound)
    return max(limits, key=lambda lim: lim.bound)


@dataclass
class SeriesState:
    """The learned state of one sensor: detector, persistence, flat-line and trend."""

    capability: str
    detector: SeasonalZScore
    trend: TimeToLimit | None = None
    threshold: float | None = None  # raised by false-positive feedback
    last_ts: int = -1  # last learned event time: a replay does not learn twice
    hits: int = 0  # bit mask of the last anomalies (1 = anomalous)
    max_score: float = 0.0  # largest score while the current run of hits lasts
    last_value: float = math.nan
    run: int = 0  # consecutive readings equal to the one before
    repeat_share: float = 0.0  # learned share of readings equal to the one before
    bucket_start: int = -1
    bucket_sum: float = 0.0
    bucket_n: int = 0
    trend_hits: int = 0
    win_sum: float = 0.0  # the device window being filled: sum and count of learned values
    win_n: int = 0
    win_scale: float = 0.0  # fixed at the first window: residuals in this series' spread
    likelihood: AnomalyLikelihood | None = None  # over the detector's |z| (generic series)
    lik_threshold: float | None = None  # raised by false-positive feedback


@dataclass
class DeviceState:
    """Everything learned about one device (the unit of checkpointing)."""

    device_type: str
    series: dict[str, SeriesState] = field(default_factory=dict)
    last_seq: int | None = None
    ticks: int = 0
    missing: float = 0.0  # exponentially weighted share of missing ticks
    last_seen: int = -1  # largest event time of a reading (state expiry)
    window: WindowModel | None = None  # over the series' bucket residuals
    win_start: int = -1  # event time the window being filled starts at
    win_hits: int = 0  # bit mask of the last anomalous windows
    win_refused: int = 0  # windows in a row missing a feature (rebuilt after an hour)
    win_threshold: float | None = None  # raised by false-positive feedback
    win_score: float = math.nan  # the last window's score
    drift_up: list[float] = field(default_factory=list)  # CUSUM per feature of ``window``
    drift_down: list[float] = field(default_factory=list)
    win_settled: int = 0  # windows seen since the series' profiles are warm (up to settle)
    win_settle_sum: dict[str, float] | None = None  # their features' sums


WindowModel = WindowMahalanobis | WindowHSTResiduals


def new_window_model(cfg: DetectionConfig) -> WindowModel:
    """A device's window model, as ``cfg.window_model`` says.

    ``"mahalanobis"``: :class:`WindowMahalanobis` (normalised, centred at 0) scores the
    window and gives the residuals the drift CUSUM accumulates. ``"hst"``: River's
    ``HalfSpaceTrees`` (:class:`WindowHST`, score in ``[0, 1]``, ``window_hst_*``) scores
    the window, and the same :class:`WindowMahalanobis` is kept beside it for the CUSUM's
    residuals (:class:`WindowHSTResiduals`); warm-up and persistence are shared.
    """
    mahalanobis = WindowMahalanobis(
        warmup=cfg.window_warmup,
        threshold=cfg.window_threshold,
        fading=cfg.window_fading,
        shrink=cfg.window_shrink,
        clip=cfg.window_clip,
        normalize=True,
        center=False,
        slow_above=cfg.window_threshold,
    )
    if cfg.window_model == "mahalanobis":
        return mahalanobis
    hst = WindowHST(
        warmup=cfg.window_warmup,
        threshold=cfg.window_hst_threshold,
        n_trees=cfg.window_hst_trees,
        height=cfg.window_hst_height,
        window_size=cfg.window_hst_size,
    )
    return WindowHSTResiduals(hst, mahalanobis)


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
    ) -> None:
        config = config or DetectionConfig()
        overrides = {
            k: v
            for k, v in (
                ("warmup", warmup),
                ("threshold", threshold),
                ("score_sample_every", score_sample_every),
            )
            if v is not None
        }
        if overrides:
            values = {f: getattr(config, f) for f in DetectionConfig.__dataclass_fields__}
            config = DetectionConfig(**{**values, **overrides})
        self.config = config
        self.policy = policy or AlertPolicy()
        self.devices: dict[DeviceKey, DeviceState] = {}
        self.device_source: dict[DeviceKey, Source] = {}
        self.dirty: set[DeviceKey] = set()
        self.watermark: dict[Source, int] = {}  # event time, run on by idle()
        self.event_time: dict[Source, int] = {}  # the largest event time seen per partition
        self.alerts: dict[str, AlertState] = {}
        self.open_alerts: dict[str, DeviceKey] = {}  # alert keys not RESOLVED
        self.out = DetectionOutput()
        self._gap_alpha = 1.0 / 30.0

    @property
    def warmup(self) -> int:
        return self.config.warmup

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
        last = self.event_time.get(src)
        if last is None or ts > last:
            self.event_time[src] = ts
        self.device_source[device] = src
        dev = self.devices.get(device)
        # The wall-clock time rules of assess_reading are not applied (now_ms = ts):
        # replays and accelerated simulations carry event times far from the clock.
        verdict, reason = assess_reading(
            capability=cap,
            value=value,
            ts_ms=ts,
            now_ms=ts,
            device_type=dtype,
            known_device_type=dev.device_type if dev is not None else None,
        )
        if dev is None or reason == "device_type_changed":
            dev = self.devices[device] = DeviceState(dtype)  # a new type starts a new warm-up
        self.dirty.add(device)
        if ts > dev.last_seen:
            dev.last_seen = ts
        self._sequence(device, dev, reading.get("sequence"), ts, dtype)
        if self.config.window:
            bucket = ts - ts % self.config.trend_bucket_ms
            if dev.win_start < 0:
                dev.win_start = bucket
            elif bucket > dev.win_start:
                self._window(device, dev, dtype, ts)
                dev.win_start = bucket
        if verdict != "OK":
            self.out.suspect += 1
            if reason == "out_of_physical_range":
                return  # not a real measurement: no alert, no score, no learning
        breach = check_limits(dtype, cap, value)
        if breach is not None:
            self._observe(
                device,
                limit_rule(cap, breach),
                breach.severity,
                ts,
                dtype,
                cap,
                f"{cap} {value:g} breaches {breach.rule} ({breach.severity})",
            )
        if cap in STATE_CAPABILITIES:
            return
        key = reading.get("sensor_id") or cap
        ser = dev.series.get(key)
        if ser is None:
            ser = dev.series[key] = SeriesState(
                cap, SeasonalZScore(warmup=self.config.warmup, threshold=self.config.threshold)
            )
            scope = self.config.likelihood
            if scope == "all" or (scope == "generic" and cap == "GENERIC"):
                ser.likelihood = AnomalyLikelihood(
                    warmup=self.config.likelihood_warmup,
                    threshold=self.config.likelihood_threshold,
                    short=self.config.likelihood_short,
                    history=self.config.likelihood_history,
                )
            limit = _trend_limit(dtype, cap)
            if limit is not None:
                ser.trend = TimeToLimit(
                    limit=limit.bound,
                    direction=limit.direction,
                    horizon_s=self.config.horizon_ms / 1000.0,
                    size=self.config.trend_points,
                    warmup=self.config.trend_points // 2,
                )
        learn = verdict == "OK" and reading.get("quality") == "GOOD" and ts > ser.last_ts
        self._score(device, ser, reading, learn=learn)
        if learn:
            ser.last_ts = ts
            if ts >= dev.win_start:
                ser.win_sum += value
                ser.win_n += 1
            self._flat_line(device, ser, value, ts, dtype)
            if ser.trend is not None:
                self._trend(device, ser, value, ts, dtype)

    def _score(
        self, device: DeviceKey, ser: SeriesState, reading: Mapping[str, Any], *, learn: bool
    ) -> None:
        det = ser.detector
        ts: int = reading["timestamp"]
        value: float = reading["value"]
        n = det.n_learned
        if ser.likelihood is not None and det.is_warm:
            self._likelihood(device, ser, reading, det.z(value, ts), learn=learn)
        s = det.process_one(value, ts, learn=learn)
        # an operating state (a pack's charge current) is learned for the device window,
        # never judged on its own: it follows the schedule and the state of charge
        flagged = (
            s.is_anomaly
            and (ser.threshold is None or s.score >= ser.threshold)
            and (reading["device_type"], ser.capability) not in OPERATING_STATE
        )
        cfg = self.config
        if learn:
            ser.hits = ((ser.hits << 1) | flagged) & ((1 << cfg.persistence_window) - 1)
            ser.max_score = max(ser.max_score, s.score) if ser.hits else 0.0
            if flagged and ser.hits.bit_count() >= cfg.persistence:
                cap = ser.capability
                self._observe(
                    device,
                    f"anomaly:{cap}",
                    "WARNING",
                    ts,
                    reading["device_type"],
                    cap,
                    f"{cap} anomalous: {ser.hits.bit_count()} of the last "
                    f"{cfg.persistence_window} readings scored >= {s.threshold:g} "
                    f"(last {s.score:.1f}, value {value:g})",
                    {f"score:{cap}": f"{ser.max_score:.3f}"},
                )
        sampled = cfg.score_sample_every > 0 and s.warm and n % cfg.score_sample_every == 0
        if not (flagged or sampled):
            return
        self._anomaly(
            device,
            reading["device_type"],
            ser.capability,
            s.detector,
            ts,
            s.score,
            ser.threshold or s.threshold,
            value,
            flagged,
            reading.get("reading_id") or "",
        )

    def _likelihood(
        self,
        device: DeviceKey,
        ser: SeriesState,
        reading: Mapping[str, Any],
        z: float,
        *,
        learn: bool,
    ) -> None:
        """Judge the anomaly likelihood of the detector's recent ``|z|`` (an alert at once:
        the short average already asks for more than one unusual reading)."""
        lik = cast(AnomalyLikelihood, ser.likelihood)
        ts: int = reading["timestamp"]
        value: float = reading["value"]
        s = lik.process_one(z, ts, learn=learn)
        threshold = ser.lik_threshold or s.threshold
        if not (s.is_anomaly and s.score >= threshold):
            return
        cap = ser.capability
        self._anomaly(
            device,
            reading["device_type"],
            cap,
            s.detector,
            ts,
            s.score,
            threshold,
            value,
            True,
            reading.get("reading_id") or "",
        )
        if learn:
            self._observe(
                device,
                f"anomaly:{cap}",
                "WARNING",
                ts,
                reading["device_type"],
                cap,
                f"{cap} unusual for this series: recent scores have a likelihood of "
                f"1e-{s.score:.1f} (threshold 1e-{threshold:g}, value {value:g})",
                {f"score:likelihood:{cap}": f"{s.score:.3f}"},
            )

    def _flat_line(
        self, device: DeviceKey, ser: SeriesState, value: float, ts: int, dtype: str
    ) -> None:
        same = value == ser.last_value
        ser.last_value = value
        ser.run = ser.run + 1 if same else 0
        if ser.run < self.config.stuck_after:
            # learned outside of flat runs: a series that often repeats (a gear, a switch)
            # is never called stuck
            ser.repeat_share += 0.01 * (float(same) - ser.repeat_share)
            return
        if ser.detector.is_warm and ser.repeat_share < 0.3:
            cap = ser.capability
            self._observe(
                device,
                f"sensor:stuck:{cap}",
                "WARNING",
                ts,
                dtype,
                cap,
                f"{cap} stuck at {value:g} for {ser.run + 1} readings",
            )

    def _trend(
        self, device: DeviceKey, ser: SeriesState, value: float, ts: int, dtype: str
    ) -> None:
        cfg = self.config
        trend = cast(TimeToLimit, ser.trend)
        bucket = ts - ts % cfg.trend_bucket_ms
        if ser.bucket_start == bucket or ser.bucket_start < 0:
            ser.bucket_start = bucket
            ser.bucket_sum += value
            ser.bucket_n += 1
            return
        mean = ser.bucket_sum / ser.bucket_n
        trend.learn_one(mean, ser.bucket_start + cfg.trend_bucket_ms // 2)
        ser.bucket_start, ser.bucket_sum, ser.bucket_n = bucket, value, 1
        if not (trend.is_warm and ser.detector.is_warm):
            return
        eta = trend.time_to_limit_s(bucket)
        # a daily heating that stops short of the limit (a charge, a load peak) is in the
        # daily profile: only a level unusual for the hour is extrapolated
        usual = abs(ser.detector.deviation(mean, bucket)) < cfg.trend_min_deviation
        if eta is None or eta <= 0 or eta * 1000 > cfg.horizon_ms:
            ser.trend_hits = 0
            return
        if usual:
            return  # not evidence either way
        ser.trend_hits += 1
        if ser.trend_hits >= cfg.trend_confirm:
            cap = ser.capability
            side = "above" if trend.direction == "above" else "below"
            self._observe(
                device,
                "PREDICTED_FAILURE",
                "WARNING",
                ts,
                dtype,
                cap,
                f"{cap} predicted {side} {trend.limit:g} in {eta / 3600:.1f} h (now {mean:g})",
                {"time_to_failure_s": f"{eta:.0f}", "predicted_capability": cap},
            )

    def _window(self, device: DeviceKey, dev: DeviceState, dtype: str, ts: int) -> None:
        """Close the device's window: score its series' bucket residuals together.

        Feature ``i`` is the bucket mean of series ``i`` minus its seasonal baseline at the
        bucket's middle, in that series' typical spread (fixed when the series first enters
        a window). :class:`WindowMahalanobis` (normalised, so one threshold serves any
        number of series) scores the vector against the EW covariance of past windows:
        signals moving together in a way they do not usually (bearing temperature and
        vibration rising while flow and current do not) score high though no single one is
        extreme. Each feature's residual *given the others* feeds a two-sided CUSUM: one
        signal drifting away from the signals that usually explain it (one tyre, one cell,
        a coolant sensor against its engine) accumulates evidence window after window.
        """
        cfg = self.config
        mid = dev.win_start + cfg.trend_bucket_ms // 2
        feats: dict[str, float] = {}
        for key, ser in dev.series.items():
            if not ser.win_n:
                continue
            det = ser.detector
            if det.n_learned >= cfg.window_min_learned:
                if ser.win_scale <= 0.0:
                    ser.win_scale = det.spread()
                feats[key] = det.residual(ser.win_sum / ser.win_n, mid) / ser.win_scale
            ser.win_sum, ser.win_n = 0.0, 0
        if len(feats) < 2:
            return
        win = dev.window
        if win is not None and not all(k in feats for k in win.features):
            dev.win_refused += 1
            if dev.win_refused >= 3_600_000 // cfg.trend_bucket_ms:
                dev.window = None  # a series is gone: learn the device's new set of series
            return
        dev.win_refused = 0
        if win is None:
            win = dev.window = new_window_model(cfg)
            dev.win_hits = 0
        given = tuple(
            sorted(k for k in feats if (dtype, dev.series[k].capability) in OPERATING_STATE)
        )
        if win.given != given:
            win.given = given  # conditioned on the device's operating state, never judging it
        score, residuals = win.score_and_residuals(feats)
        warm = win.is_warm
        dev.win_score = score
        win.learn_one(feats, ts)
        if not dev.drift_up or len(dev.drift_up) != len(win.features):
            dev.drift_up = [0.0] * len(win.features)
            dev.drift_down = [0.0] * len(win.features)
        if not (warm and math.isfinite(score)) or not all(
            dev.series[k].detector.is_warm for k in win.features
        ):
            # the series' daily profiles are not learned yet: their residuals still change
            # meaning (a partial hour's mean, then the full profile), so nothing is judged
            dev.drift_up = [0.0] * len(win.features)
            dev.drift_down = [0.0] * len(win.features)
            return
        if win.given and dev.win_settled < cfg.window_settle:
            # the profiles have just become warm: residuals are now taken from yesterday's
            # profile, no longer from the recent level the window learned on. On a device
            # with an operating state they carry the difference between today's state and
            # yesterday's at that hour (a pack at another charge than yesterday: its pack
            # and cell voltages all lower together, for hours), which day one's windows
            # never showed. The mean of the first ``window_settle`` windows is that offset:
            # it is added to the covariance as a direction of normal variation (rank one)
            # before anything is judged; one signal against the others stays as visible.
            acc = dev.win_settle_sum or {}
            for name in win.features:
                acc[name] = acc.get(name, 0.0) + feats[name]
            dev.win_settled += 1
            dev.win_settle_sum = acc
            if dev.win_settled >= cfg.window_settle:
                win.add_direction({n: v / dev.win_settled for n, v in acc.items()})
                dev.win_settle_sum = None
            dev.drift_up = [0.0] * len(win.features)
            dev.drift_down = [0.0] * len(win.features)
            return
        threshold = dev.win_threshold or win.threshold
        flagged = score >= threshold
        dev.win_hits = ((dev.win_hits << 1) | flagged) & ((1 << cfg.window_persistence_window) - 1)
        judged = [k for k in residuals if k not in win.given] or list(residuals)
        top = max(judged, key=lambda k: abs(residuals[k]))
        top_cap = dev.series[top].capability
        if flagged and dev.win_hits.bit_count() >= cfg.window_persistence:
            lead = sorted(judged, key=lambda k: -abs(residuals[k]))[:3]
            named = ", ".join(f"{k} {residuals[k]:+.1f}" for k in lead)
            self._observe(
                device,
                "anomaly:window",
                "WARNING",
                ts,
                dtype,
                top_cap,
                f"signals of {device[1]} unusual together: window score {score:.1f} >= "
                f"{threshold:g} in {dev.win_hits.bit_count()} of the last "
                f"{cfg.window_persistence_window} "
                f"windows (given the others: {named})",
                {"score:window": f"{score:.3f}"},
            )
        self._window_score(
            device,
            dtype,
            top_cap,
            win.name,
            score,
            threshold,
            flagged,
            dev.win_start,
            win.n_learned,
        )
        # drift of one signal away from the others: CUSUM of its conditional residual
        h, k = cfg.drift_threshold, cfg.drift_slack
        for i, key in enumerate(win.features):
            if key in win.given:
                continue  # an operating state is not judged, only conditioned on
            r = max(-4.0 * h, min(4.0 * h, residuals[key]))
            up = min(2.0 * h, max(0.0, dev.drift_up[i] + r - k))
            down = min(2.0 * h, max(0.0, dev.drift_down[i] - r - k))
            dev.drift_up[i], dev.drift_down[i] = up, down
            if max(up, down) >= h:
                cap = dev.series[key].capability
                side = "above" if up >= down else "below"
                self._observe(
                    device,
                    "anomaly:window",
                    "WARNING",
                    ts,
                    dtype,
                    cap,
                    f"{key} drifts {side} what {device[1]}'s other signals predict "
                    f"(CUSUM {max(up, down):.1f} >= {h:g})",
                    {"score:window": f"{score:.3f}"},
                )
                self._window_score(
                    device,
                    dtype,
                    cap,
                    "window_drift",
                    max(up, down),
                    h,
                    True,
                    dev.win_start,
                    win.n_learned,
                )

    def _window_score(
        self,
        device: DeviceKey,
        dtype: str,
        cap: str,
        detector: str,
        score: float,
        threshold: float,
        flagged: bool,
        start: int,
        n: int,
    ) -> None:
        every = self.config.score_sample_every
        if not (flagged or (every > 0 and n % max(1, every // 10) == 0)):
            return
        self._anomaly(device, dtype, cap, detector, start, score, threshold, score, flagged, "")

    def _anomaly(
        self,
        device: DeviceKey,
        dtype: str,
        cap: str,
        detector: str,
        ts: int,
        score: float,
        threshold: float,
        value: float,
        flagged: bool,
        reading_id: str,
    ) -> None:
        """One ``AnomalyScore`` record for ``telemetry.anomalies`` (flagged ones counted)."""
        if flagged:
            self.out.anomaly_counts[(detector, dtype)] += 1
        self.out.anomalies.append(
            {
                "ts": ts,
                "tenant_id": device[0],
                "device_id": device[1],
                "device_type": dtype,
                "capability": cap,
                "detector": detector,
                "score": score,
                "threshold": threshold,
                "value": value,
                "is_anomaly": flagged,
                "reading_id": reading_id,
            }
        )

    def _sequence(self, device: DeviceKey, dev: DeviceState, seq: Any, ts: int, dtype: str) -> None:
        """Missing ticks of a device: gaps in its ``sequence`` (one number per tick)."""
        if not isinstance(seq, int) or (dev.last_seq is not None and seq <= dev.last_seq):
            return
        a = self._gap_alpha
        if dev.last_seq is not None:
            for _ in range(min(seq - dev.last_seq - 1, 200)):
                dev.missing += a * (1.0 - dev.missing)
        dev.missing *= 1.0 - a
        dev.last_seq = seq
        dev.ticks += 1
        if dev.ticks > 2 / a and dev.missing >= self.config.gap_share:
            self._observe(
                device,
                "device:gaps",
                "WARNING",
                ts,
                dtype,
                "UNKNOWN",
                f"{dev.missing:.0%} of the recent ticks of {device[1]} are missing",
            )

    # -- alerts -------------------------------------------------------------------------
    def _observe(
        self,
        device: DeviceKey,
        rule: str,
        severity: Any,
        ts: int,
        dtype: str,
        cap: str,
        summary: str,
        attributes: dict[str, str] | None = None,
    ) -> None:
        obs = Observation(
            tenant_id=device[0],
            device_id=device[1],
            rule=rule,
            severity=severity,
            ts_ms=ts,
            device_type=dtype,
            capability=cap,
            summary=summary,
            group=DEVICE_GROUP,
            attributes=attributes or {},
        )
        key = alert_key(device[0], device[1], DEVICE_GROUP)
        state = self.alerts.get(key)
        if state is not None:
            src = self.device_source.get(device)
            wm = self.watermark.get(src) if src is not None else None
            if wm is not None:
                state = self._tick(key, state, wm)
        dups = state.duplicates if state is not None else 0
        new, record = advance_alert(state, obs, self.policy)
        if attributes and record is None and new.state != "RESOLVED":
            merged = {**new.attributes}
            for k, v in attributes.items():
                if k.startswith("score:") and float(merged.get(k, "0")) >= float(v):
                    continue
                merged[k] = v
            if merged != new.attributes:
                new = AlertState(**{**new.to_dict(), "attributes": merged})
        self.alerts[key] = new
        if new.state != "RESOLVED":
            self.open_alerts[key] = device
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

    def idle(self, src: Source, idle_ms: int) -> None:
        """Partition ``src`` had no input for ``idle_ms`` (wall clock): its detection
        watermark runs on from the last event time seen on it by as much, and quiet alerts
        resolve. Without this, the alerts of a fleet that stopped sending, or of the last
        devices of a replay, would stay FIRING until new input moved event time on.
        ``resolved_at`` stays ``last_seen + quiet period`` (the same record as with input)."""
        last = self.event_time.get(src)
        if last is None:
            return
        target = last + max(idle_ms, 0)
        if target > self.watermark.get(src, target - 1):
            self.watermark[src] = target
            self.tick([src])

    def expire(self, src: Source, ttl_ms: int) -> list[tuple[Source, bytes]]:
        """Forget the devices of partition ``src`` not heard from for ``ttl_ms`` of its event
        time (decommissioned, renamed): their models and their resolved alert. Returns the
        changelog keys to delete (tombstones). A device with an open alert is kept until the
        alert resolves; one that comes back later warms up again."""
        wm = self.watermark.get(src)
        if wm is None:
            return []
        open_devices = set(self.open_alerts.values())
        gone = [
            d
            for d, s in self.device_source.items()
            if s == src
            and d in self.devices
            and self.devices[d].last_seen < wm - ttl_ms
            and d not in open_devices
        ]
        for device in gone:
            del self.devices[device]
            del self.device_source[device]
            self.dirty.discard(device)
            self.alerts.pop(alert_key(device[0], device[1], DEVICE_GROUP), None)
        return [(src, f"{t}/{d}".encode()) for t, d in gone]

    def take(self) -> DetectionOutput:
        """What was produced since the last call."""
        out, self.out = self.out, DetectionOutput()
        return out

    # -- operator feedback --------------------------------------------------------------
    def feedback(self, alert_id: str, kind: str, now_ms: int) -> bool:
        """Apply ``ack`` or ``false_positive`` to the alert ``alert_id`` if it is held here.

        A false positive raises the thresholds of the series whose anomalies the alert
        reported (``adapt_threshold`` above the alert's largest score); safety limits are
        never changed by feedback. Returns whether the alert was found.
        """
        key = alert_id.rsplit("@", 1)[0]
        state = self.alerts.get(key)
        if state is None or state.alert_id != alert_id:
            return False
        new, record = apply_feedback(state, cast(Any, kind), now_ms)
        self.alerts[key] = new
        if new.state == "RESOLVED":
            self.open_alerts.pop(key, None)
        if record is not None:
            self.out.alerts.append(record)
        if kind == "false_positive" and record is not None:
            dev = self.devices.get((state.tenant_id, state.device_id))
            if dev is not None:
                for attr, score in state.attributes.items():
                    if not attr.startswith("score:"):
                        continue
                    cap = attr.removeprefix("score:")
                    if cap == "window":  # the device's window detector
                        current = dev.win_threshold or (
                            dev.window.threshold if dev.window else self.config.window_threshold
                        )
                        dev.win_threshold = adapt_threshold(current, float(score))
                        continue
                    if cap.startswith("likelihood:"):  # a series' anomaly likelihood
                        cap = cap.removeprefix("likelihood:")
                        for ser in dev.series.values():
                            if ser.capability == cap:
                                current = ser.lik_threshold or self.config.likelihood_threshold
                                ser.lik_threshold = adapt_threshold(current, float(score))
                        continue
                    for ser in dev.series.values():
                        if ser.capability == cap:
                            current = ser.threshold or self.config.threshold
                            ser.threshold = adapt_threshold(current, float(score))
                self.dirty.add((state.tenant_id, state.device_id))
        return True

    def thresholds(self, device: DeviceKey) -> dict[str, float]:
        """The adapted thresholds of a device's series (sensor → threshold)."""
        dev = self.devices.get(device)
        if dev is None:
            return {}
        return {k: s.threshold for k, s in dev.series.items() if s.threshold is not None}

    # -- checkpoints --------------------------------------------------------------------
    def checkpoint(
        self, sources: Iterable[Source] | None = None
    ) -> list[tuple[Source, bytes, bytes]]:
        """``(source, key, value)`` changelog records of every device changed since its last
        checkpoint (of the devices last seen on ``sources`` only, when given); ``source`` is
        the input partition the device's readings come from."""
        wanted = None if sources is None else set(sources)
        out = []
        for device in list(self.dirty):
            src = self.device_source.get(device)
            if wanted is not None and src not in wanted:
                continue
            self.dirty.discard(device)
            dev = self.devices.get(device)
            if dev is None or src is None:
                continue
            blob = pickle.dumps((_CHECKPOINT_VERSION, dev), protocol=pickle.HIGHEST_PROTOCOL)
            out.append((src, f"{device[0]}/{device[1]}".encode(), zlib.compress(blob, 1)))
        return out

    def load_checkpoint(
        self, records: Iterable[tuple[bytes, bytes]], source: Source | None = None
    ) -> int:
        """Restore devices not held in memory from changelog records; returns how many.

        ``source``: the input partition these devices' readings come from. A record that
        does not load (another version, corrupt) is skipped: that device warms up again,
        nothing else is affected. The records are this worker's own pickles, read from a
        topic only the pipeline writes to (restrict it with ACLs on a shared cluster).
        """
        n = 0
        for key, value in records:
            tenant, _, device_id = key.decode(errors="replace").partition("/")
            device = (tenant, device_id)
            if device in self.devices:
                continue
            try:
                version, dev = pickle.loads(zlib.decompress(value))  # our own changelog records
            except Exception:  # any undecodable record just means a cold start
                continue
            if version != _CHECKPOINT_VERSION or not isinstance(dev, DeviceState):
                continue
            self.devices[device] = dev
            if source is not None:
                self.device_source[device] = source
            n += 1
        return n

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
            self.event_time.pop(src, None)
        kept = {d for d, s in self.device_source.items() if s not in gone}
        self.device_source = {d: self.device_source[d] for d in kept}
        self.devices = {k: v for k, v in self.devices.items() if k in kept}
        self.dirty &= kept
        self.alerts = {k: v for k, v in self.alerts.items() if (v.tenant_id, v.device_id) in kept}
        self.open_alerts = {k: v for k, v in self.open_alerts.items() if v in kept}


def detection_stage_from_settings(settings: Settings) -> DetectionStage:
    """The detection stage the worker runs, configured from ``settings``.

    One place for this construction: the worker (``streams.app``) and the benchmarks that
    feed readings to the stage directly (``bench.nab --offline``) use it.
    """
    config = DetectionConfig(
        warmup=settings.detector_warmup,
        threshold=settings.detector_threshold,
        persistence=settings.detector_persistence,
        likelihood=settings.detector_likelihood,
        likelihood_threshold=settings.detector_likelihood_threshold,
        horizon_ms=round(settings.predict_horizon_seconds * 1000),
        score_sample_every=settings.anomaly_sample_every,
        window_model=settings.detector_window_model,
    )
    return DetectionStage(
        config,
        policy=AlertPolicy(
            quiet_period_ms=round(settings.alert_quiet_period_seconds * 1000),
            repeat_interval_ms=round(settings.alert_repeat_interval_seconds * 1000),
        ),
    )
