"""``envirostream bench throughput``: the worker's drain rate against the raw ceiling.

In one run, on a private broker and store (own data dir and ports, so a running pipeline
is untouched): fill ``telemetry.readings`` with N simulated readings, then measure
(a) the raw ceiling — a plain consumer that only fetches and decodes them: aiokafka
``getmany`` + the batch read into columns (``schemas/reading_columns.py``, the fastest pair
of ``bench decode``), and beside it the old ceilings, confluent-kafka + fastavro per record
and aiokafka + the specialised decoder's dict per record — and
(b) the worker draining them through validation, windowing and the ClickHouse sink, with
the worker's CPU seconds and the seconds its inserts took over the drain.
Prints readings/s for both, their ratio and peak memory, then (c) where the worker's time
per reading goes: the same readings through the worker's processing in process
(``bench.process_cost``: with and without detection, no Kafka, no store) beside the
worker's wall time per reading. The last line is JSON.
"""

from __future__ import annotations

import json
import resource
import time
import urllib.request
from pathlib import Path

from bench.process_cost import process_cost
from bench.raw_read import fill_readings, read_rate
from bench.scale import scrape
from core.settings import Settings
from infra.harness import WorkerProcess, private_services, private_settings
from sinks.client import get_client
from topics import TopicAdmin, topic_specs

__all__ = ["run_throughput_bench"]


def _metric(port: int, name: str) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
    except OSError:
        return -1.0
    return 0.0


INSERT_SECONDS = "envirostream_sink_batch_duration_seconds_sum"


def _worker_drain(
    settings: Settings, total: int, log: Path
) -> tuple[float, int, int, float, float]:
    """Drain time, rows stored, peak RSS (KiB), and over the drain: the worker's CPU
    seconds (all threads) and the seconds its inserts took (the sink's histogram)."""
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
        cpu0 = worker.cpu_seconds()
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
        cpu = worker.cpu_seconds() - cpu0
        samples = scrape(settings.metrics_port)
        inserts = sum(v for k, v in samples.items() if k.startswith(INSERT_SECONDS))
        peak = worker.peak_rss_kib()
    finally:
        worker.stop()
    return elapsed, state["stored"], peak, cpu, inserts


def run_throughput_bench(base: Settings, readings: int = 200_000) -> dict[str, float]:
    settings = private_settings(base, "envirostream-bench-", idle_close_seconds=2)
    tmp = settings.data_dir
    print(f"bench throughput: {readings:,} readings, private services under {tmp}", flush=True)
    with private_services(settings):
        TopicAdmin(settings).create_missing(topic_specs(settings))
        total, fill_s = fill_readings(settings, readings)
        print(f"  filled {total:,} readings in {fill_s:.1f}s ({total / fill_s:,.0f}/s)", flush=True)
        # The old ceilings (confluent-kafka + fastavro per record; aiokafka + the specialised
        # decoder, a dict per reading), then today's: the fastest pair measured by
        # `bench decode` (aiokafka getmany, the batch read into columns, as the worker does).
        old_rate = read_rate(settings, total, "confluent", "fastavro")
        print(f"  (a0) raw, confluent + fastavro (old): {old_rate:>10,.0f} readings/s", flush=True)
        dict_rate = read_rate(settings, total, "aiokafka", "codec")
        print(f"  (a1) raw, aiokafka + dict per record: {dict_rate:>10,.0f} readings/s", flush=True)
        raw_rate = read_rate(settings, total, "aiokafka", "columns")
        raw_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(f"  (a) raw, aiokafka + columns:          {raw_rate:>10,.0f} readings/s", flush=True)
        work_s, stored, peak, work_cpu, insert_s = _worker_drain(
            settings, total, tmp / "worker.log"
        )
        work_rate = stored / work_s
        print(
            f"  (b) worker → ClickHouse: {work_rate:>9,.0f} readings/s ({work_s:.1f} s; worker "
            f"CPU {work_cpu:.1f} s, inserts {insert_s:.2f} s)",
            flush=True,
        )
        ratio = work_rate / raw_rate
        print(
            f"  ratio worker/raw: {ratio:.2f} (to the dict-per-record ceiling "
            f"{work_rate / dict_rate:.2f})   peak RSS worker {peak / 1024:,.0f} MiB, "
            f"bench process {raw_peak / 1024:,.0f} MiB"
        )
    # (c) after the services stopped: the cores are the processing's alone
    cost = process_cost(settings, total)
    worker_us, raw_us = 1e6 / work_rate, 1e6 / raw_rate
    print(
        f"  (c) per reading: worker {worker_us:.1f} µs wall, raw ceiling {raw_us:.1f} µs; in "
        f"process (no Kafka, no store) {cost['with_detection_us']:.1f} µs CPU with detection, "
        f"{cost['without_detection_us']:.1f} µs without (detection {cost['detection_us']:.1f})",
        flush=True,
    )
    figures = {
        "readings": total,
        "fill_per_s": round(total / fill_s),
        "raw_fastavro_per_s": round(old_rate),
        "raw_records_per_s": round(dict_rate),
        "raw_per_s": round(raw_rate),
        "worker_per_s": round(work_rate),
        "ratio": round(ratio, 3),
        "ratio_to_records_ceiling": round(work_rate / dict_rate, 3),
        "worker_peak_rss_mib": round(peak / 1024, 1),
        "bench_peak_rss_mib": round(raw_peak / 1024, 1),
        "worker_us_per_reading": round(worker_us, 2),
        "worker_cpu_us_per_reading": round(work_cpu / stored * 1e6, 2),
        "worker_insert_share": round(insert_s / work_s, 3),
        "raw_us_per_reading": round(raw_us, 2),
        **{f"process_{k}": v for k, v in cost.items()},
    }
    print(json.dumps(figures))
    return figures
