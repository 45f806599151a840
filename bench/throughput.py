"""``envirostream bench throughput``: the worker's drain rate against the raw ceiling.

In one run, on a private broker and store (own data dir and ports, so a running pipeline
is untouched): fill ``telemetry.readings`` with N simulated readings, then measure
(a) the raw ceiling — a plain consumer that only fetches and decodes them — and
(b) the worker draining them through validation, windowing and the ClickHouse sink.
Prints readings/s for both, their ratio and peak memory; the last line is JSON.
"""

from __future__ import annotations

import json
import resource
import time
import urllib.request
import uuid
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from core.settings import Settings
from infra.harness import WorkerProcess, private_services, private_settings
from producers.fleet import Fleet
from producers.models import KINDS
from producers.simulator import SimulationConfig, run_simulation
from schemas import AvroCodec
from sinks.client import get_client
from topics import READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer

__all__ = ["run_throughput_bench"]


def _raw_ceiling(settings: Settings, total: int) -> tuple[float, int]:
    codec = AvroCodec()
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"bench-raw-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    parts = consumer.list_topics(READINGS, timeout=10).topics[READINGS].partitions
    consumer.assign([TopicPartition(READINGS, p, 0) for p in parts])
    seen = decoded = 0
    t0 = time.perf_counter()
    while seen < total:
        msgs = consumer.consume(num_messages=10_000, timeout=1.0)
        if not msgs:
            continue
        seen += len(msgs)
        out = codec.decode_batch("UniversalSensorReading", [m.value() or b"" for m in msgs])
        decoded += sum(1 for o in out if isinstance(o, dict))
    elapsed = time.perf_counter() - t0
    consumer.close()
    return elapsed, decoded


def _metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except OSError:
        return -1.0
    return 0.0


def _worker_drain(settings: Settings, total: int, log: Path) -> tuple[float, int, int]:
    client = get_client(settings)
    worker = WorkerProcess(settings, log)
    try:
        consumed_metric = "envirostream_readings_consumed_total"
        deadline = time.monotonic() + 600
        worker.wait_for(
            "the worker to start consuming",
            lambda: _metric(settings.metrics_port, consumed_metric) > 0,
            600,
            interval=0.05,
        )
        t0 = time.perf_counter()
        state = {"stored": 0}

        def drained() -> bool:
            state["stored"] = int(client.query("SELECT count() FROM readings").result_rows[0][0])
            return state["stored"] >= total

        worker.wait_for(
            "the worker to drain the readings",
            drained,
            max(0.0, deadline - time.monotonic()),
            progress=lambda: f"{state['stored']}/{total} stored",
            interval=0.1,
            note_every=float("inf"),  # the figure is the drain time: no notes meanwhile
        )
        elapsed = time.perf_counter() - t0
        peak = worker.peak_rss_kib()
    finally:
        worker.stop()
    return elapsed, state["stored"], peak


def run_throughput_bench(base: Settings, readings: int = 200_000) -> dict[str, float]:
    settings = private_settings(base, "envirostream-bench-", idle_close_seconds=2)
    tmp = settings.data_dir
    print(f"bench throughput: {readings:,} readings, private services under {tmp}", flush=True)
    with private_services(settings):
        TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
        devices, kinds = 1000, KINDS
        per_tick = Fleet(devices, kinds, seed=1).readings_per_tick
        config = SimulationConfig(
            devices=devices,
            kinds=kinds,
            speedup=0,
            start_ms=1_767_225_600_000,
            duration_s=max(1, readings // per_tick),
            seed=1,
        )
        t0 = time.perf_counter()
        report = run_simulation(
            config, RecordProducer(settings.bootstrap_servers), AvroCodec(), READINGS
        )
        fill_s = time.perf_counter() - t0
        total = report.delivered
        print(f"  filled {total:,} readings in {fill_s:.1f}s ({total / fill_s:,.0f}/s)", flush=True)
        raw_s, decoded = _raw_ceiling(settings, total)
        raw_rate = decoded / raw_s
        raw_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"  (a) raw fetch+decode:   {raw_rate:>10,.0f} readings/s", flush=True)
        work_s, stored, peak = _worker_drain(settings, total, tmp / "worker.log")
        work_rate = stored / work_s
        print(f"  (b) worker → ClickHouse: {work_rate:>9,.0f} readings/s", flush=True)
        ratio = work_rate / raw_rate
        print(
            f"  ratio worker/raw: {ratio:.2f}   peak RSS worker {peak / 1024:,.0f} MiB, "
            f"bench process {raw_peak / 1024:,.0f} MiB"
        )
        figures = {
            "readings": total,
            "fill_per_s": round(total / fill_s),
            "raw_per_s": round(raw_rate),
            "worker_per_s": round(work_rate),
            "ratio": round(ratio, 3),
            "worker_peak_rss_mib": round(peak / 1024, 1),
            "bench_peak_rss_mib": round(raw_peak / 1024, 1),
        }
        print(json.dumps(figures))
        return figures
