"""``envirostream bench scale``: do 1, 2 and 4 workers add up?

The same input for every run: a seeded fleet (1,000 devices of every kind, a fixed start
time) played into ``telemetry.readings`` as fast as the broker takes it, on fresh private
services per run (own broker, store, consumer group), so no run sees another's output. Then
K ``envirostream worker`` processes in one consumer group drain it: the run ends when the
store holds every reading, the aggregates account for every reading once and the group has
no lag. The workers join the group on the empty topic, and the input is produced once they
share every partition (their start-up and the join's rebalances are not measured; the
producer runs beside them for the first seconds, alike in every run). Reported per run:

* readings/s: readings stored / seconds from the first reading produced to the last stored;
* CPU µs per reading: user+system CPU of every worker process (``/proc``, from the group
  being assigned to the end) / readings produced; per worker as well. On a machine with
  fewer cores than workers the wall-clock rate cannot grow, so *this* is the scaling
  figure: flat CPU per reading as workers are added means the work splits without overhead;
* correctness: readings stored (distinct ``reading_id``); windows whose final aggregate
  does not count exactly the readings stored in it (``wrong_windows``: a window split
  between two workers by a rebalance, emitted twice with partial counts, would show here);
  the readings the final aggregates count; aggregate rows beyond one per window (versions
  of re-emitted windows, which the table's ``FINAL`` collapses); records consumed twice.
* a projection for a cluster with a core per worker, stated as such: K x one worker's
  readings per CPU-second.

The last line is JSON.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from confluent_kafka import ConsumerGroupState, KafkaException
from confluent_kafka.admin import AdminClient

from core.errors import EnviroStreamError
from core.settings import Settings
from infra.harness import WorkerProcess, private_services, private_settings
from infra.processes import free_port
from producers.models import KINDS
from producers.simulator import SimulationConfig, run_simulation
from schemas import AvroCodec
from sinks.client import get_client
from streams.health import ConsumerLagProbe
from topics import READINGS, TopicAdmin, topic_specs
from topics.kafka_config import librdkafka_config
from topics.producer import RecordProducer

__all__ = ["RunFigures", "count", "group_assigned", "run_scale_bench", "scrape"]

START_MS = 1_767_225_600_000
DEVICES = 1000
CONSUMED = "envirostream_readings_consumed_total"


def count(client: Any, sql: str) -> int:
    """The single number a ``SELECT`` returns (0 for NULL)."""
    return int(client.query(sql).result_rows[0][0] or 0)


def scrape(port: int) -> dict[str, float]:
    """Every unlabelled-or-labelled sample of a /metrics page, by its full series text."""
    out: dict[str, float] = {}
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as r:
            text = r.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


@dataclass
class RunFigures:
    workers: int
    produced: int
    stored: int
    wall_s: float
    cpu_s: list[float]
    consumed: list[int]
    aggregate_rows: int
    windows: int
    aggregated_readings: int
    wrong_windows: int

    @property
    def per_s(self) -> float:
        return self.stored / self.wall_s

    @property
    def cpu_us_per_reading(self) -> float:
        return sum(self.cpu_s) / self.produced * 1e6

    def as_dict(self) -> dict[str, object]:
        return {
            "workers": self.workers,
            "readings_per_s": round(self.per_s),
            "wall_s": round(self.wall_s, 2),
            "cpu_us_per_reading": round(self.cpu_us_per_reading, 1),
            "cpu_us_per_reading_per_worker": [
                round(c / max(1, n) * 1e6, 1)
                for c, n in zip(self.cpu_s, self.consumed, strict=True)
            ],
            "consumed_per_worker": self.consumed,
            "consumed_twice": sum(self.consumed) - self.produced,
            "stored": self.stored,
            "aggregate_rows": self.aggregate_rows,
            "windows": self.windows,
            "aggregate_versions": self.aggregate_rows - self.windows,
            "aggregated_readings": self.aggregated_readings,
            "wrong_windows": self.wrong_windows,
        }


def _fill(settings: Settings, readings: int) -> int:
    per_tick = SimulationConfig(devices=DEVICES, kinds=KINDS).fleet().readings_per_tick
    config = SimulationConfig(
        devices=DEVICES,
        kinds=KINDS,
        speedup=0,
        start_ms=START_MS,
        duration_s=max(1, readings // per_tick),
        seed=1,
    )
    report = run_simulation(config, RecordProducer(settings), AvroCodec(), READINGS)
    if report.undelivered:
        msg = f"bench scale: {report.undelivered} readings not acknowledged by the broker"
        raise EnviroStreamError(msg)
    return report.delivered


def _wrong_windows_sql(window_ms: int) -> str:
    """Windows whose final aggregate count differs from the distinct readings stored in
    them (a window with no aggregate, or an aggregate with no readings, counts too)."""
    start = f"intDiv(toUnixTimestamp64Milli(ts), {window_ms}) * {window_ms}"
    return (
        "SELECT count() FROM ("
        "SELECT device_id, capability, toUnixTimestamp64Milli(window_start) AS ws, "
        "max(count) AS n FROM aggregates FINAL GROUP BY device_id, capability, ws) AS a "
        f"FULL OUTER JOIN (SELECT device_id, capability, {start} AS ws, "
        "uniqExact(reading_id) AS n FROM readings GROUP BY device_id, capability, ws) AS r "
        "ON a.device_id = r.device_id AND a.capability = r.capability AND a.ws = r.ws "
        "WHERE a.n != r.n"
    )


def group_assigned(admin: AdminClient, group: str, members: int, partitions: int) -> bool:
    """True once ``group`` is stable with ``members`` members holding every readings
    partition between them (no rebalance under way)."""
    try:
        desc = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except KafkaException:
        return False
    held = sum(
        1
        for m in desc.members
        for tp in (m.assignment.topic_partitions if m.assignment else [])
        if tp.topic == READINGS
    )
    return (
        desc.state == ConsumerGroupState.STABLE
        and len(desc.members) == members
        and held == partitions
    )


def _one_run(base: Settings, workers: int, readings: int, timeout: float) -> RunFigures:
    """K workers join the group on the empty topic first (start-up and the join's
    rebalances are not measured), then the input is produced while they consume it."""
    settings = private_settings(base, f"envirostream-bench-scale{workers}-", idle_close_seconds=10)
    with private_services(settings):
        TopicAdmin(settings).create_missing(topic_specs(settings))
        client = get_client(settings)
        admin = AdminClient(librdkafka_config(settings))
        procs = [
            WorkerProcess(
                settings.model_copy(update={"metrics_port": free_port()}),
                settings.data_dir / f"worker-{i}.log",
            )
            for i in range(workers)
        ]
        probe = ConsumerLagProbe(settings, settings.app_id, [READINGS])
        try:
            for p in procs:
                p.wait_healthy(timeout)
            first = procs[0]
            first.wait_for(
                f"{workers} worker(s) to share the {settings.topic_partitions} partitions",
                lambda: group_assigned(admin, settings.app_id, workers, settings.topic_partitions),
                timeout,
                interval=1.0,
            )
            cpu0 = [p.cpu_seconds() for p in procs]
            t0 = time.perf_counter()
            produced = _fill(settings, readings)
            state = {"stored": 0}

            def stored_all() -> bool:
                q = "SELECT uniqExact(reading_id) FROM readings"
                state["stored"] = count(client, q)
                return state["stored"] >= produced

            first.wait_for(
                "every reading stored",
                stored_all,
                timeout,
                progress=lambda: f"{state['stored']:,}/{produced:,}",
                interval=0.1,
                note_every=float("inf"),
            )
            wall = time.perf_counter() - t0
            q_agg = "SELECT sum(count) FROM aggregates FINAL"
            first.wait_for(
                "the aggregates to count every reading and no lag",
                lambda: count(client, q_agg) >= produced and sum(probe.lag().values()) == 0,
                timeout,
                interval=0.5,
            )
            cpu = [p.cpu_seconds() - c for p, c in zip(procs, cpu0, strict=True)]
            consumed = [int(scrape(p.settings.metrics_port).get(CONSUMED, 0)) for p in procs]
            rows, windows, counted = client.query(
                "SELECT count(), uniqExact(device_id, capability, window_size, window_start), "
                "(SELECT sum(count) FROM aggregates FINAL) FROM aggregates"
            ).result_rows[0]
            wrong = count(client, _wrong_windows_sql(settings.window_ms))
        finally:
            probe.close()
            for p in procs:
                p.stop()
    return RunFigures(
        workers, produced, state["stored"], wall, cpu, consumed, rows, windows, int(counted), wrong
    )


def run_scale_bench(
    base: Settings, readings: int = 300_000, workers: tuple[int, ...] = (1, 2, 4)
) -> dict[str, object]:
    if readings < 1:
        msg = f"bench scale: --readings must be >= 1, got {readings}"
        raise EnviroStreamError(msg)
    if base.topic_partitions < max(workers):
        msg = (
            f"bench scale: {max(workers)} workers need at least as many partitions; "
            f"ENVIROSTREAM_TOPIC_PARTITIONS is {base.topic_partitions}"
        )
        raise EnviroStreamError(msg)
    cores = os.cpu_count() or 1
    print(
        f"bench scale: {readings:,} readings of a seeded {DEVICES:,}-device fleet, "
        f"{base.topic_partitions} partitions, workers {workers}, {cores} cores",
        flush=True,
    )
    runs: list[RunFigures] = []
    for k in workers:
        fig = _one_run(base, k, readings, timeout=900)
        runs.append(fig)
        d = fig.as_dict()
        print(
            f"  {k} worker(s): {fig.per_s:>9,.0f} readings/s, CPU "
            f"{fig.cpu_us_per_reading:6.1f} µs/reading (per worker "
            f"{d['cpu_us_per_reading_per_worker']}), stored {fig.stored:,}/{fig.produced:,}, "
            f"windows {fig.windows:,} (wrong {fig.wrong_windows}, re-emitted versions "
            f"{d['aggregate_versions']:,}), consumed twice {d['consumed_twice']:,}",
            flush=True,
        )
    one = runs[0]
    per_cpu_s = 1e6 / one.cpu_us_per_reading  # readings one worker does per CPU-second
    projection = {str(k): round(k * per_cpu_s) for k in (1, 2, 4, 8, 16)}
    print(
        "  projection (not measured: a core per worker, broker and store not the limit): "
        + ", ".join(f"{k} workers ≈ {v:,} readings/s" for k, v in projection.items()),
        flush=True,
    )
    figures = {
        "bench": "scale",
        "readings": one.produced,
        "partitions": base.topic_partitions,
        "cores": cores,
        "runs": [r.as_dict() for r in runs],
        "cpu_ratio_last_to_first": round(runs[-1].cpu_us_per_reading / one.cpu_us_per_reading, 3),
        "projection_readings_per_s": projection,
    }
    print(json.dumps(figures))
    return figures
