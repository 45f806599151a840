"""``envirostream up`` (services + worker + simulated fleet + live summary) and ``status``."""

from __future__ import annotations

import os
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families

from core.errors import EnviroStreamError
from core.settings import Settings
from producers.simulator import SimulationConfig, SimulationReport

if TYPE_CHECKING:
    from api.server import ApiProcess

__all__ = ["Snapshot", "print_status", "run_up", "take_snapshot"]

TABLES = ("readings", "aggregates")


@dataclass
class Snapshot:
    """Counters read at one moment from the worker's /metrics and the store."""

    at: float
    consumed: float = 0.0
    windows: float = 0.0
    dead_letters: float = 0.0
    late: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)
    worker_up: bool = False
    store_up: bool = False


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
    return totals


def take_snapshot(settings: Settings, client: object | None) -> Snapshot:
    snap = Snapshot(at=time.monotonic())
    try:
        m = _scrape(settings.metrics_port)
        snap.worker_up = True
        snap.consumed = m.get("envirostream_readings_consumed_total", 0.0)
        snap.windows = m.get("envirostream_windows_emitted_total", 0.0)
        snap.dead_letters = m.get("envirostream_records_dead_lettered_total", 0.0)
        snap.late = m.get("envirostream_late_readings_total", 0.0)
    except OSError:
        pass
    if client is not None:
        try:
            for table in TABLES:
                snap.rows[table] = int(client.command(f"SELECT count() FROM {table}"))  # type: ignore[attr-defined]
            snap.store_up = True
        except Exception:
            snap.store_up = False
    return snap


def _rate(now: float, before: float, seconds: float) -> str:
    return f"{(now - before) / seconds:>10,.0f}/s" if seconds > 0 else " " * 12


def format_summary(
    cur: Snapshot, prev: Snapshot, report: SimulationReport, started: float, settings: Settings
) -> list[str]:
    from api.server import api_url

    dt_s = cur.at - prev.at
    produced_rate = ""
    return [
        f"EnviroStream — running {time.monotonic() - started:6.0f}s   "
        f"Kafka {settings.bootstrap_servers}   ClickHouse {settings.store_url}"
        + (f"   API {api_url(settings)}" if settings.api_port else ""),
        "",
        f"  simulator   produced {report.produced:>12,}   delivered {report.delivered:>12,}"
        + produced_rate,
        f"  worker      {'up  ' if cur.worker_up else 'DOWN'}  consumed {cur.consumed:>12,.0f} "
        f"{_rate(cur.consumed, prev.consumed, dt_s)}",
        f"  windows     closed   {cur.windows:>12,.0f} {_rate(cur.windows, prev.windows, dt_s)}"
        f"   ({settings.window_label} tumbling, lateness {settings.allowed_lateness_seconds:g}s)",
        f"  dead letters         {cur.dead_letters:>12,.0f}   late readings {cur.late:,.0f}",
        "  stored      "
        + "   ".join(f"{t} {cur.rows.get(t, 0):>12,}" for t in TABLES)
        + ("" if cur.store_up else "   (store not answering)"),
        "",
        '  query: envirostream query "SELECT capability, count(), avg(mean) '
        'FROM aggregates FINAL GROUP BY capability"',
        "  Ctrl-C stops what `up` started; the data stays queryable.",
    ]


def run_up(settings: Settings, config: SimulationConfig, run_for: float | None = None) -> int:
    """Start what is missing, run worker + simulator with a live summary until Ctrl-C."""
    from infra.harness import WorkerProcess
    from infra.kafka import stop_kafka
    from infra.prereqs import check_prerequisites
    from infra.services import started_services
    from infra.store import stop_store
    from producers.simulator import run_simulation
    from schemas import AvroCodec, SchemaRegistryClient
    from sinks.client import get_client
    from topics import READINGS, TopicAdmin, topic_specs
    from topics.producer import RecordProducer

    problems = check_prerequisites(need_kafka=settings.uses_local_kafka)
    if problems:
        raise EnviroStreamError("missing prerequisites:\n  " + "\n  ".join(problems))
    _check_api_port(settings)
    print("starting local services (first run fetches Kafka from Maven Central)...", flush=True)
    started = started_services(settings)
    TopicAdmin(settings).create_missing(topic_specs(settings))
    log_path = settings.data_dir / "logs" / "worker.log"
    worker = WorkerProcess(settings, log_path, cwd=Path.cwd())
    try:
        api = _start_api(settings, config.tenant_id)
    except BaseException:
        worker.stop(timeout=60)
        raise
    stop = threading.Event()
    report = SimulationReport()

    def simulate() -> None:
        nonlocal report
        producer = RecordProducer(settings)
        report = run_simulation(
            config,
            producer,
            AvroCodec(registry=SchemaRegistryClient.from_settings(settings)),
            READINGS,
            stop=stop,
            on_tick=lambda r: _copy(r, report),
        )

    sim = threading.Thread(target=simulate, name="simulator", daemon=True)
    sim.start()
    client = get_client(settings)
    interactive = sys.stdout.isatty()
    t0 = time.monotonic()
    prev = take_snapshot(settings, client)
    exit_code = 0
    try:
        while run_for is None or time.monotonic() - t0 < run_for:
            time.sleep(1.0 if interactive else 5.0)
            if not worker.alive():
                print(f"worker exited with code {worker.returncode}; see {log_path}")
                exit_code = 1
                break
            cur = take_snapshot(settings, client)
            lines = format_summary(cur, prev, report, t0, settings)
            if interactive:
                sys.stdout.write("\x1b[H\x1b[2J" + "\n".join(lines) + "\n")
            else:
                print(" | ".join(line.strip() for line in lines[2:7]), flush=True)
            prev = cur
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        sim.join(timeout=60)
        time.sleep(settings.worker_batch_seconds + settings.sink_batch_seconds + 1)
        worker.stop(timeout=60)
        if api is not None:
            api.stop()
        final = take_snapshot(settings, client)
        print(
            f"stopped. produced {report.produced:,} readings; stored "
            + ", ".join(f"{t} {final.rows.get(t, 0):,}" for t in TABLES)
        )
        if "store" in started:
            stop_store(settings)
        if "kafka" in started:
            stop_kafka(settings)
        print("data kept in " + str(settings.data_dir) + '; query it: envirostream query "SQL"')
    return exit_code


def _check_api_port(settings: Settings) -> None:
    """Stop before starting anything when the API's port is taken (0: the API is off)."""
    from core.errors import ConfigurationError
    from infra.processes import port_open

    if settings.api_port and port_open(settings.api_host, settings.api_port):
        msg = (
            f"{settings.api_host}:{settings.api_port} is already in use; pick a free port "
            "(or 0 to run `up` without the API)"
        )
        setting = "ENVIROSTREAM_API_PORT"
        raise ConfigurationError(setting, msg)


def _start_api(settings: Settings, tenant: str) -> ApiProcess | None:
    """The operator API in a child process (``envirostream api``), unless its port is 0.

    On the embedded store, the web view's key for ``tenant`` is kept in a file
    (:mod:`api.local_key`); its path is printed, never the key.
    """
    from api.server import ApiProcess

    if settings.api_port == 0:
        return None
    api = ApiProcess(settings, settings.data_dir / "logs" / "api.log", cwd=Path.cwd())
    api.wait_ready(60)
    print(
        f"operator API on {api.url} (OpenAPI {api.url}/docs; keys: envirostream keys create)",
        flush=True,
    )
    if settings.uses_local_store:
        from api.local_key import ensure_local_key
        from api.store import store_client

        path = ensure_local_key(store_client(settings), settings, tenant)
        print(f"web view on {api.url}/ (tenant {tenant}; its key is in {path})", flush=True)
    return api


def _copy(src: SimulationReport, dest: SimulationReport) -> None:
    dest.produced, dest.delivered, dest.ticks = src.produced, src.delivered, src.ticks


def print_status(settings: Settings) -> None:
    from infra.services import services_status
    from sinks.client import get_client

    for line in services_status(settings):
        print(line)
    try:
        client = get_client(settings)
    except EnviroStreamError:
        client = None
    snap = take_snapshot(settings, client)
    print(
        f"worker {'up' if snap.worker_up else 'not answering'} on :{settings.metrics_port}; "
        f"consumed {snap.consumed:,.0f}, windows {snap.windows:,.0f}, "
        f"dead letters {snap.dead_letters:,.0f}"
    )
    for table, rows in snap.rows.items():
        print(f"{table:12} {rows:>14,} rows")
    if os.environ.get("ENVIROSTREAM_CLICKHOUSE_URL") is None and not snap.store_up:
        print("store not running: `envirostream infra up` starts it")
