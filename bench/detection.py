"""``envirostream bench detection``: alert quality against the simulator's labels.

A seeded, accelerated fleet with failures (every scenario that fits a device) is generated
tick by tick and fed to the detection stage the worker runs
(:func:`streams.detection.detection_stage_from_settings`, same settings), in event-time
order; the alerts it raises are scored against the labels (``bench.scoring``): recall,
precision, false alerts per 100 healthy device-days, lead time before FAILURE, alerts per
incident, and the stage's CPU cost per reading. Failures start after ``--onset-delay``
hours, so the learned models have warmed up (``ENVIROSTREAM_DETECTOR_WARMUP`` is set to one
day of readings unless given).

Beside it, the baseline a user would try first (``bench.baseline``): scikit-learn's
IsolationForest on per-device window features (mean and std per capability over
``--window`` minutes), trained on the hours before any onset, on the same readings.

This runs the stage in-process (no Kafka, no ClickHouse): the worker feeds the stage the
same readings in the same order per partition, so the alerts are the same; the pipeline's
own exactly-once behaviour is covered by the integration tests.
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from typing import Any

from bench.baseline import isolation_forest_alerts
from bench.scoring import AlertRow, Incident, format_table, report_json, score_alerts
from envirostream.settings import Settings, load_settings, settings_environ
from producers.simulator import SimulationConfig, build_records
from streams.detection import detection_stage_from_settings

__all__ = ["run_detection_bench"]

_START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
_SRC = ("telemetry.readings", 0)


def run_detection_bench(
    base: Settings,
    *,
    devices: int = 120,
    hours: float = 36.0,
    onset_delay_h: float = 24.0,
    failure_rate: float = 0.5,
    rate_hz: float = 1 / 60,
    seed: int = 7,
    window_min: int = 5,
) -> dict[str, Any]:
    config = SimulationConfig(
        devices=devices,
        kinds=("grid", "battery", "vehicle", "machine"),
        rate_hz=rate_hz,
        speedup=0,
        start_ms=_START_MS,
        duration_s=hours * 3600,
        seed=seed,
        failure_rate=failure_rate,
        onset_delay_s=onset_delay_h * 3600,
    )
    env = settings_environ(base)
    env.setdefault("ENVIROSTREAM_DETECTOR_WARMUP", str(round(86_400 * rate_hz)))
    settings = load_settings(env)
    stage = detection_stage_from_settings(settings)
    fleet = config.fleet()
    step_ms = round(1000 / rate_hz)
    end_ms = _START_MS + round(hours * 3_600_000)
    window_ms = window_min * 60_000
    print(
        f"bench detection: {devices} devices, {hours:g} h of event time at {rate_hz * 60:g} "
        f"readings/min per sensor, failures after {onset_delay_h:g} h (seed {seed})",
        flush=True,
    )
    phases: dict[str, dict[str, int]] = {}
    scenario_of: dict[str, str] = {}
    windows: dict[tuple[str, str, str, int], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    alerts: dict[str, AlertRow] = {}
    readings = 0
    cpu = 0.0
    ts, seq = _START_MS, 0
    while ts < end_ms:
        records = build_records(fleet.tick(ts), seq, "default")
        t0 = time.process_time()
        for r in records:
            stage.observe(_SRC, r)
        stage.tick([_SRC])
        out = stage.take()
        cpu += time.process_time() - t0
        for a in out.alerts:
            if a["alert_id"] not in alerts:
                alerts[a["alert_id"]] = AlertRow(
                    a["alert_id"], a["device_id"], a["first_seen"], a["rule"], a["severity"]
                )
        wstart = ts - ts % window_ms
        for r in records:
            label = r["label"]
            if label is not None:
                scenario_of[r["device_id"]] = label["scenario"]
                phases.setdefault(r["device_id"], {}).setdefault(label["phase"], ts)
            acc = windows[(r["device_id"], r["device_type"], r["capability"], wstart)]
            acc[0] += 1
            acc[1] += r["value"]
            acc[2] += r["value"] * r["value"]
        readings += len(records)
        seq += 1
        ts += step_ms
    incidents = []
    for device, first in phases.items():
        failure = first.get("FAILURE", end_ms)
        onset = first.get("PRECURSOR", failure)
        incidents.append(Incident(device, scenario_of[device], onset, failure))
    for device, scenario in fleet.assignments.items():
        if device not in phases:  # dropped out before its first labelled reading
            incidents.append(Incident(device, scenario, end_ms, end_ms))
    healthy = [d for d in fleet.device_ids if d not in fleet.assignments]
    ours = score_alerts(
        incidents, healthy, alerts.values(), run_start_ms=_START_MS, run_end_ms=end_ms
    )
    aggregates = [
        {
            "device_id": d,
            "device_type": dt,
            "capability": cap,
            "window_start_ms": w,
            "count": n,
            "mean": s / n,
            "std": math.sqrt(max(sq / n - (s / n) ** 2, 0.0)),
            "min": math.nan,
            "max": math.nan,
        }
        for (d, dt, cap, w), (n, s, sq) in windows.items()
    ]
    baseline_alerts, baseline_cpu = isolation_forest_alerts(
        aggregates,
        train_end_ms=_START_MS + round(onset_delay_h * 3_600_000),
        quiet_period_ms=round(settings.alert_quiet_period_seconds * 1000),
        seed=seed,
    )
    theirs = score_alerts(
        incidents, healthy, baseline_alerts, run_start_ms=_START_MS, run_end_ms=end_ms
    )
    print(format_table({"envirostream": ours, "isolation_forest": theirs}))
    us_ours = cpu / readings * 1e6
    us_theirs = baseline_cpu / readings * 1e6
    print(
        f"cost per reading: envirostream {us_ours:.1f} µs (detection stage, in-process), "
        f"isolation_forest {us_theirs:.1f} µs (fit + predict, offline); {readings:,} readings"
    )
    figures = {
        "readings": readings,
        "envirostream": report_json(ours),
        "isolation_forest": report_json(theirs),
        "us_per_reading": {"envirostream": round(us_ours, 2), "isolation_forest": us_theirs},
    }
    print(json.dumps(figures))
    return figures
