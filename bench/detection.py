"""``envirostream bench detection``: alert quality against the simulator's labels.

A seeded, accelerated fleet with failures (every scenario that fits a device) is run
through the detection and the alerts it raises are scored against the labels
(``bench.scoring``): recall, precision, false alerts per 100 healthy device-days, lead time
before FAILURE, alerts per incident, and the detector's cost. Failures start after
``onset_delay_h`` hours, so the learned models have warmed up (``ENVIROSTREAM_DETECTOR_WARMUP``
is set to one day of readings unless given).

* **pipeline** (default): private Kafka + store (own data dir under ``/tmp``, free ports)
  and one ``envirostream worker`` subprocess with the same detection settings. The fleet's
  readings (event times from a fixed start, ``speedup=0``) are produced to
  ``telemetry.readings`` with the project's producer and encoder (key = device id), then the
  worker drains them; the bench waits until the worker's consumer group has no lag on its
  input topics (readings, and the alerts it stores) and the store holds every reading. The
  alerts are read back from ClickHouse (``alerts FINAL``: one row per ``alert_id``), the
  ground truth from the ``readings`` table (``scenario``, ``phase``), cross-checked against
  what the simulator generated, and the baseline's window features are computed there too.
  Cost: the worker's end-to-end rate (readings/s, decode to ClickHouse) and its CPU per
  reading (the whole worker process).
* **offline** (``--offline``): the readings are generated tick by tick and fed straight to
  the detection stage the worker runs (:func:`streams.detection.detection_stage_from_settings`,
  same settings), in event-time order. Cost: the stage's CPU per reading, in-process.

Both modes build incidents (:func:`build_incidents`) and baseline windows
(:func:`window_aggregates`) the same way and score with :func:`bench.scoring.score_alerts`.
The worker keeps each device's readings in order (one key, one partition) but interleaves
partitions, so per-device detection is the same as offline; only the per-partition
watermark (when quiet alerts resolve) differs, which does not change alert ids or
``first_seen``.

Beside it, the baseline a user would try first (``bench.baseline``): scikit-learn's
IsolationForest on per-device window features (mean and std per capability over
``window_min`` minutes), trained on the hours before any onset, on the same readings.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.baseline import isolation_forest_alerts
from bench.scoring import (
    AlertRow,
    Incident,
    format_table,
    incidents_from_phases,
    report_json,
    score_alerts,
)
from core.errors import EnviroStreamError
from core.settings import Settings, load_settings, settings_environ
from producers.fleet import FleetTick
from producers.models import KINDS
from producers.simulator import SimulationConfig, build_records
from streams.signals.config import DETECTION_SETTINGS

__all__ = [
    "PhaseRow",
    "alerts_from_rows",
    "build_incidents",
    "compare_ground_truth",
    "record_phases",
    "run_detection_bench",
    "window_aggregates",
]

_START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC
_SRC = ("telemetry.readings", 0)

PhaseRow = tuple[str, str, str, int]
"""``(device_id, scenario, phase, first event time ms)``: the first reading of each phase."""

# (device_id, device_type, capability, window_start_ms) -> (count, sum, sum of squares)
WindowSums = Mapping[tuple[str, str, str, int], tuple[int, float, float]]


# -- pure helpers (unit-tested) -------------------------------------------------------------
def build_incidents(
    phase_rows: Iterable[PhaseRow], assignments: Mapping[str, str], run_end_ms: int
) -> list[Incident]:
    """The incidents to score against, from the first reading of each labelled phase.

    ``assignments`` (device -> scenario, the simulator's draw) adds an incident at the run
    end (``onset = failure = run_end_ms``: it cannot be detected, it counts as missed) for
    every failing device whose readings never left NORMAL or that sent no labelled reading
    (a dropout before its first one). A device that reached PRECURSOR but not FAILURE has
    ``failure_ms = run_end_ms``. Sorted by device.
    """
    incidents = {i.device_id: i for i in incidents_from_phases(phase_rows, run_end_ms=run_end_ms)}
    for device, scenario in assignments.items():
        if device not in incidents:
            incidents[device] = Incident(device, scenario, run_end_ms, run_end_ms)
    return [incidents[d] for d in sorted(incidents)]


def record_phases(
    tick: FleetTick, device_ids: list[str], first: dict[tuple[str, str, str], int]
) -> None:
    """Add the labelled (device, scenario, phase) of ``tick`` not seen before to ``first``.

    ``device_ids`` are the fleet's (``Fleet.device_ids``, indexed by the rows'
    ``device_index``). Ticks come in event-time order, so the value kept is each phase's
    first event time.
    """
    codes = tick.label_codes
    mask = codes > 0
    if not mask.any():
        return
    static = tick.static
    devices = static.device_index[tick.rows[mask]]
    pairs = np.unique(np.stack([devices, codes[mask]]), axis=1)
    for d, code in pairs.T.tolist():
        label = static.labels[code]
        assert label is not None  # code 0 is the only unlabelled one
        key = (device_ids[d], label["scenario"], label["phase"])
        first.setdefault(key, tick.ts_ms)


def alerts_from_rows(rows: Iterable[Sequence[Any]]) -> list[AlertRow]:
    """Alerts from ``(alert_id, device_id, first_seen_ms, rule, severity)`` rows.

    One :class:`AlertRow` per ``alert_id`` (the earliest ``first_seen`` if versions
    disagree, which ``alerts FINAL`` should never return), sorted by device and time.
    """
    out: dict[str, AlertRow] = {}
    for alert_id, device, first_seen, rule, severity in rows:
        row = AlertRow(str(alert_id), str(device), int(first_seen), str(rule), str(severity))
        known = out.get(row.alert_id)
        if known is None or row.first_seen_ms < known.first_seen_ms:
            out[row.alert_id] = row
    return sorted(out.values(), key=lambda a: (a.device_id, a.first_seen_ms, a.alert_id))


def window_aggregates(sums: WindowSums) -> list[dict[str, Any]]:
    """Rows for :func:`bench.baseline.isolation_forest_alerts` from per-window sums.

    ``std`` is the population standard deviation ``sqrt(E[x^2] - E[x]^2)`` (clamped at 0).
    """
    return [
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
        for (d, dt, cap, w), (n, s, sq) in sums.items()
        if n > 0
    ]


def compare_ground_truth(
    stored: Collection[PhaseRow], generated: Collection[PhaseRow], limit: int = 5
) -> list[str]:
    """Differences between the labels in ClickHouse and the simulator's (empty: equal)."""
    a, b = set(stored), set(generated)
    problems = []
    if len(a) != len(stored):
        problems.append(f"{len(stored) - len(a)} duplicate phase rows in ClickHouse")
    for what, rows in (("only in ClickHouse", a - b), ("only in the simulator", b - a)):
        if rows:
            shown = ", ".join(map(str, sorted(rows)[:limit]))
            problems.append(f"{len(rows)} phase rows {what}: {shown}")
    return problems


# -- the two modes ----------------------------------------------------------------------------
@dataclass
class RunResult:
    """What a mode hands to the scoring."""

    alerts: list[AlertRow]
    phase_rows: list[PhaseRow]
    healthy: list[str]
    windows: dict[tuple[str, str, str, int], tuple[int, float, float]]
    readings: int
    cost_lines: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


def _offline(
    config: SimulationConfig, settings: Settings, end_ms: int, window_ms: int
) -> RunResult:
    from streams.detection import detection_stage_from_settings

    stage = detection_stage_from_settings(settings)
    fleet = config.fleet()
    step_ms = round(1000 / config.rate_hz)
    first: dict[tuple[str, str, str], int] = {}
    windows: dict[tuple[str, str, str, int], list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    alerts: dict[str, AlertRow] = {}
    readings = 0
    cpu = 0.0
    ts, seq = _START_MS, 0
    while ts < end_ms:
        tick = fleet.tick(ts)
        records = build_records(tick, seq, "default")
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
        record_phases(tick, fleet.device_ids, first)
        wstart = ts - ts % window_ms
        for r in records:
            acc = windows[(r["device_id"], r["device_type"], r["capability"], wstart)]
            acc[0] += 1
            acc[1] += r["value"]
            acc[2] += r["value"] * r["value"]
        readings += len(records)
        seq += 1
        ts += step_ms
    us = cpu / readings * 1e6
    return RunResult(
        alerts=list(alerts.values()),
        phase_rows=[(d, s, p, t) for (d, s, p), t in first.items()],
        healthy=[d for d in fleet.device_ids if d not in fleet.assignments],
        windows={k: (int(n), s, sq) for k, (n, s, sq) in windows.items()},
        readings=readings,
        cost_lines=[f"envirostream {us:.1f} µs (detection stage, in-process)"],
        figures={"us_per_reading": {"envirostream": round(us, 2)}},
    )


def _pipeline(
    config: SimulationConfig,
    det: Settings,
    base: Settings,
    end_ms: int,
    window_ms: int,
    timeout_s: float,
) -> RunResult:
    from infra.harness import WorkerProcess, private_settings, start_services, stop_services
    from producers.encoding import TickEncoder
    from schemas import AvroCodec
    from sinks.clickhouse import ClickHouseSink
    from sinks.client import get_client
    from streams.app import INPUT_TOPICS
    from streams.detection import detection_stage_from_settings
    from streams.health import ConsumerLagProbe
    from topics import READINGS, TopicAdmin, topic_specs
    from topics.producer import RecordProducer

    overrides = {f: getattr(det, f) for f in DETECTION_SETTINGS}
    settings = private_settings(base, "envirostream-detection-", idle_close_seconds=2, **overrides)
    ours, theirs = detection_stage_from_settings(det), detection_stage_from_settings(settings)
    if (ours.config, ours.policy) != (theirs.config, theirs.policy):  # a field was missed
        msg = f"private worker's detection differs: {theirs.config} vs {ours.config}"
        raise EnviroStreamError(msg)
    tmp = settings.data_dir
    log = tmp / "worker.log"
    print(f"  private Kafka + store + worker under {tmp}", flush=True)
    worker: WorkerProcess | None = None
    failed = False  # an error keeps the data dir (and worker.log); success or Ctrl-C do not
    try:
        start_services(settings)
        TopicAdmin(settings).create_missing(topic_specs(settings))
        client = get_client(settings)
        ClickHouseSink(client, settings).setup()  # the worker's DDL, idempotent

        # 1. The seeded readings, as the simulator sends them (key = device id).
        fleet = config.fleet()
        encoder = TickEncoder(fleet, AvroCodec(), config.tenant_id)
        producer = RecordProducer(settings)
        step_ms = round(1000 / config.rate_hz)
        first: dict[tuple[str, str, str], int] = {}
        produced = 0
        t0 = time.perf_counter()
        ts, seq = _START_MS, 0
        while ts < end_ms:
            tick = fleet.tick(ts)
            keys, values = encoder.encode(tick, seq)
            producer.send_batch(READINGS, keys, values)
            record_phases(tick, fleet.device_ids, first)
            produced += len(values)
            seq += 1
            ts += step_ms
        undelivered = producer.flush(timeout=300.0)
        if undelivered or producer.failed or producer.delivered != produced:
            msg = (
                f"{producer.delivered:,}/{produced:,} readings delivered to {READINGS} "
                f"({producer.last_error})"
            )
            raise EnviroStreamError(msg)
        del producer  # release the connection before the broker stops
        produce_s = time.perf_counter() - t0
        print(
            f"  produced {produced:,} readings to {READINGS} in {produce_s:.1f}s "
            f"({produced / produce_s:,.0f}/s)",
            flush=True,
        )

        # 2. One worker drains them: readings to ClickHouse, alerts to telemetry.alerts and on.
        t0 = time.perf_counter()
        worker = WorkerProcess(settings, log)
        probe = ConsumerLagProbe(settings, settings.app_id, INPUT_TOPICS)
        first_stored: list[float] = []
        stored_at: list[float] = []
        state = {"stored": 0, "lag": -1}

        def stored_count() -> int:
            n = int(client.query("SELECT count() FROM readings").result_rows[0][0])
            state["stored"] = n
            if n and not first_stored:
                first_stored.append(time.perf_counter())
            if n >= produced and not stored_at:
                stored_at.append(time.perf_counter())
            return n

        def drained() -> bool:
            if stored_count() < produced:
                return False
            # The worker commits its input offsets only after what they produced was
            # acknowledged and stored: no lag on readings means every alert is in
            # telemetry.alerts; no lag there means every alert is in ClickHouse.
            lag = sum(probe.lag().values())
            state["lag"] = lag
            return lag == 0

        def progress() -> str:
            lag = "" if state["lag"] < 0 else f", consumer lag {state['lag']:,}"
            return f"{state['stored']:,}/{produced:,} readings stored{lag}"

        try:
            worker.wait_for(
                "the worker to drain the readings", drained, timeout_s, progress=progress
            )
        finally:
            probe.close()
        done_s = time.perf_counter() - t0
        worker_cpu = worker.cpu_seconds()
        drain_s = stored_at[0] - first_stored[0] if stored_at and first_stored else math.nan
        # 3. Results, read back from ClickHouse.
        # DEVICE_OFFLINE is left out: once the run ends every device falls silent
        alert_rows = client.query(
            "SELECT alert_id, device_id, toUnixTimestamp64Milli(first_seen), rule, severity "
            "FROM alerts FINAL WHERE rule != 'DEVICE_OFFLINE'"
        ).result_rows
        alerts = alerts_from_rows(alert_rows)
        if len(alerts) != len(alert_rows):
            msg = f"alerts FINAL returned {len(alert_rows)} rows for {len(alerts)} alert ids"
            raise EnviroStreamError(msg)
        phase_rows: list[PhaseRow] = [
            (str(d), str(s), str(p), int(t))
            for d, s, p, t in client.query(
                "SELECT device_id, scenario, phase, toUnixTimestamp64Milli(min(ts)) "
                "FROM readings FINAL WHERE scenario != '' GROUP BY device_id, scenario, phase"
            ).result_rows
        ]
        healthy = sorted(
            str(d)
            for (d,) in client.query(
                "SELECT DISTINCT device_id FROM readings FINAL WHERE scenario = ''"
            ).result_rows
        )
        stored_final = int(client.query("SELECT count() FROM readings FINAL").result_rows[0][0])
        windows = {
            (str(d), str(dt), str(cap), int(w)): (int(n), float(s), float(sq))
            for d, dt, cap, w, n, s, sq in client.query(
                "SELECT device_id, device_type, capability, "
                f"intDiv(toUnixTimestamp64Milli(ts), {window_ms}) * {window_ms} AS w, "
                "count(), sum(value), sum(value * value) FROM readings FINAL "
                "GROUP BY device_id, device_type, capability, w"
            ).result_rows
        }
        # 4. The ground truth in ClickHouse must be what the simulator generated.
        generated = [(d, s, p, t) for (d, s, p), t in first.items()]
        problems = compare_ground_truth(phase_rows, generated)
        if stored_final != produced:
            problems.append(f"readings FINAL holds {stored_final:,} of {produced:,}")
        fleet_healthy = sorted(d for d in fleet.device_ids if d not in fleet.assignments)
        if healthy != fleet_healthy:
            problems.append(
                f"unlabelled devices in ClickHouse {len(healthy)} != healthy devices of the "
                f"fleet {len(fleet_healthy)}"
            )
        if problems:
            msg = "ClickHouse's labels differ from the simulator's: " + "; ".join(problems)
            raise EnviroStreamError(msg)
        print(
            f"  worker drained and stored everything {done_s:.1f}s after its start; "
            f"ground truth in ClickHouse = simulator's ({len(phase_rows)} phase rows, "
            f"{len(healthy)} healthy devices)",
            flush=True,
        )
        rate = produced / drain_s if drain_s > 0 else math.nan
        us_worker = worker_cpu / produced * 1e6 if worker_cpu >= 0 else math.nan
        return RunResult(
            alerts=alerts,
            phase_rows=phase_rows,
            healthy=healthy,
            windows=windows,
            readings=produced,
            cost_lines=[
                f"envirostream worker {rate:,.0f} readings/s end to end (first to last reading "
                f"stored: decode, validate, window, detect, ClickHouse sink), "
                f"{us_worker:.1f} µs CPU (whole worker process, 1 process)"
            ],
            figures={
                "us_per_reading": {"worker_cpu": round(us_worker, 2)},
                "worker_readings_per_s": round(rate),
                "seconds": {
                    "produce": round(produce_s, 1),
                    "worker_drain": round(drain_s, 1),
                    "worker_start_to_done": round(done_s, 1),
                },
            },
        )
    except Exception:
        failed = True
        raise
    finally:
        if worker is not None:
            worker.stop()
        stop_services(settings)
        if failed:
            print(f"  left {tmp} for inspection (worker log: {log})", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run_detection_bench(
    base: Settings,
    *,
    offline: bool = False,
    devices: int = 120,
    hours: float = 36.0,
    onset_delay_h: float = 24.0,
    failure_rate: float = 0.5,
    rate_hz: float = 1 / 60,
    seed: int = 7,
    window_min: int = 5,
    timeout_s: float = 3600.0,
    window_model: str | None = None,
) -> dict[str, Any]:
    """Run the seeded fleet through the detection (pipeline or offline) and score it.

    ``window_model`` (``mahalanobis`` or ``hst``) overrides
    ``ENVIROSTREAM_DETECTOR_WINDOW_MODEL`` in both modes.
    """
    if onset_delay_h >= hours:
        msg = (
            f"--hours {hours:g} leaves no time for failures: they start after "
            f"{onset_delay_h:g} h (the detectors' warm-up day)"
        )
        raise EnviroStreamError(msg)
    config = SimulationConfig(
        devices=devices,
        kinds=KINDS,
        rate_hz=rate_hz,
        speedup=0,
        start_ms=_START_MS,
        duration_s=hours * 3600,
        seed=seed,
        failure_rate=failure_rate,
        onset_delay_s=onset_delay_h * 3600,
    )
    env = settings_environ(base)
    if "detector_warmup" not in base.model_fields_set:  # one day of readings unless given
        env["ENVIROSTREAM_DETECTOR_WARMUP"] = str(round(86_400 * rate_hz))
    if window_model is not None:
        env["ENVIROSTREAM_DETECTOR_WINDOW_MODEL"] = window_model
    settings = load_settings(env)
    end_ms = _START_MS + round(hours * 3_600_000)
    window_ms = window_min * 60_000
    mode = "offline" if offline else "pipeline"
    print(
        f"bench detection ({mode}): {devices} devices, {hours:g} h of event time at "
        f"{rate_hz * 60:g} readings/min per sensor, failures after {onset_delay_h:g} h "
        f"(seed {seed}), window model {settings.detector_window_model}",
        flush=True,
    )
    t0 = time.perf_counter()
    if offline:
        run = _offline(config, settings, end_ms, window_ms)
    else:
        run = _pipeline(config, settings, base, end_ms, window_ms, timeout_s)
    incidents = build_incidents(run.phase_rows, config.fleet().assignments, end_ms)
    ours = score_alerts(
        incidents, run.healthy, run.alerts, run_start_ms=_START_MS, run_end_ms=end_ms
    )
    baseline_alerts, baseline_cpu = isolation_forest_alerts(
        window_aggregates(run.windows),
        train_end_ms=_START_MS + round(onset_delay_h * 3_600_000),
        quiet_period_ms=round(settings.alert_quiet_period_seconds * 1000),
        seed=seed,
    )
    theirs = score_alerts(
        incidents, run.healthy, baseline_alerts, run_start_ms=_START_MS, run_end_ms=end_ms
    )
    seconds = time.perf_counter() - t0
    print(format_table({"envirostream": ours, "isolation_forest": theirs}))
    us_theirs = baseline_cpu / run.readings * 1e6
    print(
        f"cost per reading: {'; '.join(run.cost_lines)}; isolation_forest {us_theirs:.1f} µs "
        f"(fit + predict, offline); {run.readings:,} readings; {seconds:.0f}s in all"
    )
    if not offline:
        print("  (the detection stage's own µs/reading, in-process: `--offline`)")
    figures: dict[str, Any] = {
        "bench": "detection",
        "mode": mode,
        "devices": devices,
        "hours": hours,
        "seed": seed,
        "window_model": settings.detector_window_model,
        "readings": run.readings,
        "alerts": len({a.alert_id for a in run.alerts}),
        "envirostream": report_json(ours),
        "isolation_forest": report_json(theirs),
        **run.figures,
        "total_seconds": round(seconds, 1),
    }
    figures["us_per_reading"] = {**run.figures["us_per_reading"], "isolation_forest": us_theirs}
    print(json.dumps(figures))
    return figures
