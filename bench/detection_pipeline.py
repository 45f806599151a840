"""``envirostream bench detection``'s pipeline mode: the seeded fleet through a real worker.

Private Kafka + store (own data dir under ``/tmp``, free ports) and one ``envirostream
worker`` subprocess with the same detection settings; the readings are produced as the
simulator sends them, the worker drains them, and the alerts and ground truth are read back
from ClickHouse (see :mod:`bench.detection`, which scores both modes alike).
"""

from __future__ import annotations

import math
import shutil
import sys
import time

from bench.detection import (
    START_MS,
    PhaseRow,
    RunResult,
    alerts_from_rows,
    compare_ground_truth,
    record_phases,
)
from core.errors import EnviroStreamError
from core.settings import Settings
from producers.simulator import SimulationConfig
from streams.signals.config import DETECTION_SETTINGS

__all__ = ["run_pipeline"]


def run_pipeline(
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
        ts, seq = START_MS, 0
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
