"""``envirostream bench soak``: a real-time fleet beside broker, store and workers.

On private services (own broker, store, consumer group), ``--workers`` ``envirostream
worker`` processes with the default settings run while the simulator plays ``--devices``
devices at 1 Hz in real time (event time = wall clock) for ``--minutes``. Every 10 s it
samples readings produced and stored, the group's consumer lag (from the broker's offsets)
and the workers' resident memory. At the end it reports:

* readings/s in (acknowledged by the broker) and stored (in ``readings``);
* event-to-sink latency p50/p99 from the workers' histogram
  (``envirostream_event_to_sink_latency_seconds{table="readings"}``, summed over workers,
  interpolated within buckets as Prometheus' ``histogram_quantile`` does) and from the store
  (``stored_at - ts`` of every reading), both without the first ``warmup`` seconds;
* lag over time: the group's committed lag (what ``envirostream_consumer_lag_records``
  shows; offsets are committed only behind durable windows, so it rises by a window plus
  the lateness of input and drops as windows close: a sawtooth) and the unconsumed backlog
  (acknowledged minus consumed). The lag is bounded when the backlog reached a plateau
  (:func:`lag_bounded`) and the committed lag never exceeded the hold-back of windows:
  (window + allowed lateness + 15 s) of input;
* the workers' resident memory per (device, capability) series: RSS growth from before
  the first reading to the end, over the fleet's series (an upper bound: it includes
  buffers, caches and the allocator's slack).

``sustained`` is both p99 figures (histogram and store) under 2 s, with bounded lag and
every reading stored (:func:`is_sustained`). The last line is JSON.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.scale import CONSUMED, count, scrape
from core.errors import EnviroStreamError
from core.metrics import LATENCY_BUCKETS
from core.settings import Settings
from infra.harness import WorkerProcess, private_services, private_settings
from infra.processes import free_port
from producers.models import KINDS
from producers.simulator import SimulationConfig, SimulationReport, run_simulation
from schemas import AvroCodec
from sinks.client import get_client
from streams.health import ConsumerLagProbe
from topics import READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer

__all__ = ["histogram_quantile", "is_sustained", "lag_bounded", "run_soak_bench"]

HISTOGRAM = "envirostream_event_to_sink_latency_seconds_bucket"
SAMPLE_EVERY_S = 10.0
P99_TARGET_S = 2.0


def histogram_quantile(q: float, counts: np.ndarray, edges: tuple[float, ...]) -> float:
    """The ``q`` quantile of per-bucket counts (``len(edges) + 1``, the last +Inf), linearly
    interpolated in its bucket; a quantile in +Inf returns the last edge.

    >>> histogram_quantile(0.5, np.array([0, 10, 10, 0]), (1.0, 2.0, 4.0))
    2.0
    >>> histogram_quantile(0.75, np.array([0, 10, 10, 0]), (1.0, 2.0, 4.0))
    3.0
    >>> histogram_quantile(0.5, np.array([0, 0, 0, 0]), (1.0, 2.0, 4.0))
    nan
    """
    total = counts.sum()
    if total == 0:
        return float("nan")
    rank = q * total
    cumulative = np.cumsum(counts)
    i = int(np.searchsorted(cumulative, rank, side="left"))
    if i >= len(edges):
        return edges[-1]
    lower = 0.0 if i == 0 else edges[i - 1]
    below = 0 if i == 0 else cumulative[i - 1]
    return float(lower + (edges[i] - lower) * (rank - below) / counts[i])


def is_sustained(
    p99_histogram_s: float, p99_store_s: float, bounded: bool, stored: int, delivered: int
) -> bool:
    """Whether a soak kept up: both p99 figures under :data:`P99_TARGET_S`, the lag
    bounded, and every delivered reading stored.

    >>> is_sustained(1.7, 1.9, True, 10, 10), is_sustained(1.7, 2.1, True, 10, 10)
    (True, False)
    """
    under = p99_histogram_s < P99_TARGET_S and p99_store_s < P99_TARGET_S
    return bool(under and bounded and stored >= delivered)


def _bucket_counts(port: int) -> np.ndarray:
    """Per-bucket (not cumulative) counts of the readings latency histogram of one worker."""
    samples = scrape(port)
    cumulative = []
    for edge in [*(repr(float(e)) for e in LATENCY_BUCKETS), "+Inf"]:
        key = f'{HISTOGRAM}{{le="{edge}",table="readings"}}'
        alt = f'{HISTOGRAM}{{table="readings",le="{edge}"}}'
        cumulative.append(samples.get(key, samples.get(alt, 0.0)))
    return np.diff(np.asarray(cumulative), prepend=0.0)


def _histogram(procs: list[WorkerProcess]) -> np.ndarray:
    """The readings latency histogram's per-bucket counts, summed over the workers."""
    total = np.zeros(len(LATENCY_BUCKETS) + 1)
    for p in procs:
        total += _bucket_counts(p.settings.metrics_port)
    return total


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Sample:
    t: float
    produced: int
    stored: int
    lag: int  # committed: includes what open windows hold back on purpose
    backlog: int  # acknowledged by the broker, not yet consumed by a worker
    rss_mib: float


@dataclass
class SoakState:
    report: SimulationReport = field(default_factory=SimulationReport)
    samples: list[Sample] = field(default_factory=list)


def _series_of(devices: int) -> int:
    fleet = SimulationConfig(devices=devices, kinds=KINDS, seed=1).fleet()
    tick = fleet.tick(0)
    return len({(r[0], r[1]) for r in zip(tick.device_ids, tick.capabilities, strict=True)})


def lag_bounded(lags: list[int], rate: float) -> bool:
    """True when the largest lag of the second half of the samples is no more than the
    first half's plus 2 s of input (``rate`` readings/s): it reached a plateau.

    >>> lag_bounded([100, 900, 1000, 950, 1010, 990], rate=100)
    True
    >>> lag_bounded([100, 900, 1000, 1400, 1800, 2200], rate=100)
    False
    >>> lag_bounded([5], rate=100)
    False
    """
    half = len(lags) // 2
    if half == 0:
        return False
    return max(lags[half:]) <= max(lags[:half]) + 2 * rate


def run_soak_bench(
    base: Settings, devices: int = 800, minutes: float = 3.0, workers: int = 1
) -> dict[str, object]:
    if devices < 1 or minutes <= 0 or workers < 1:
        msg = "bench soak: --devices, --minutes and --workers must be positive"
        raise EnviroStreamError(msg)
    if workers > base.topic_partitions:
        msg = (
            f"bench soak: --workers {workers} is more than ENVIROSTREAM_TOPIC_PARTITIONS "
            f"({base.topic_partitions}); the extra workers would get no partition"
        )
        raise EnviroStreamError(msg)
    duration = minutes * 60
    warmup = min(30.0, duration / 4)
    settings = private_settings(base, "envirostream-bench-soak-")
    series = _series_of(devices)
    print(
        f"bench soak: {devices:,} devices ({series:,} series) at 1 Hz in real time for "
        f"{minutes:g} min, {workers} worker(s), {settings.topic_partitions} partitions",
        flush=True,
    )
    with private_services(settings):
        TopicAdmin(settings).create_missing(topic_specs(settings))
        client = get_client(settings)
        procs = [
            WorkerProcess(
                settings.model_copy(update={"metrics_port": free_port()}),
                settings.data_dir / f"worker-{i}.log",
            )
            for i in range(workers)
        ]
        probe = ConsumerLagProbe(settings, settings.app_id, [READINGS])
        state = SoakState()
        stop = threading.Event()
        try:
            for p in procs:
                p.wait_healthy(300)
            time.sleep(5)  # the group settles before the first reading
            rss0 = sum(_rss_kib(p.pid) for p in procs)
            config = SimulationConfig(
                devices=devices, kinds=KINDS, speedup=1.0, duration_s=duration, seed=1
            )

            def produce() -> None:
                state.report = run_simulation(
                    config,
                    RecordProducer(settings),
                    AvroCodec(),
                    READINGS,
                    stop=stop,
                    on_tick=lambda r: setattr(state, "report", r),
                )

            sim = threading.Thread(target=produce, name="soak-simulator", daemon=True)
            t0 = time.monotonic()
            start_ms = int(time.time() * 1000)
            sim.start()
            hist0: np.ndarray | None = None
            while sim.is_alive():
                sim.join(SAMPLE_EVERY_S)
                for p in procs:
                    if not p.alive():
                        msg = f"bench soak: a worker exited; see {p.log}"
                        raise EnviroStreamError(msg)
                t = time.monotonic() - t0
                if hist0 is None and t >= warmup:
                    hist0 = _histogram(procs)
                lag = sum(probe.lag().values())
                stored = count(client, "SELECT count() FROM readings")
                consumed = sum(scrape(p.settings.metrics_port).get(CONSUMED, 0) for p in procs)
                backlog = max(0, state.report.delivered - int(consumed))
                rss = sum(_rss_kib(p.pid) for p in procs) / 1024
                s = Sample(round(t, 1), state.report.produced, stored, lag, backlog, round(rss, 1))
                state.samples.append(s)
                print(
                    f"  t={s.t:6.1f}s produced {s.produced:>10,} stored {s.stored:>10,} "
                    f"lag {s.lag:>8,} (committed) {s.backlog:>8,} (unconsumed) "
                    f"workers RSS {s.rss_mib:,.0f} MiB",
                    flush=True,
                )
            run_s = time.monotonic() - t0
            hist1 = _histogram(procs)
            rss1 = sum(_rss_kib(p.pid) for p in procs)
            stored_at_end = count(client, "SELECT count() FROM readings")
            delivered = state.report.delivered
            procs[0].wait_for(
                "the rest of the readings stored",
                lambda: count(client, "SELECT count() FROM readings") >= delivered,
                120,
                interval=1.0,
            )
            since = start_ms + round(warmup * 1000)
            p50_store, p99_store = client.query(
                "SELECT quantiles(0.5, 0.99)(toUnixTimestamp64Milli(stored_at) - "
                f"toUnixTimestamp64Milli(ts)) FROM readings WHERE toUnixTimestamp64Milli(ts) "
                f">= {since}"
            ).result_rows[0][0]
            stored_final = count(client, "SELECT count() FROM readings")
        finally:
            stop.set()
            probe.close()
            for p in procs:
                p.stop()
    counts = hist1 - hist0 if hist0 is not None else hist1
    p50 = histogram_quantile(0.5, counts, LATENCY_BUCKETS)
    p99 = histogram_quantile(0.99, counts, LATENCY_BUCKETS)
    rate_in = delivered / run_s
    hold_back = (settings.window_seconds + settings.allowed_lateness_seconds + 15) * rate_in
    bounded = (
        lag_bounded([s.backlog for s in state.samples], rate_in)
        and max((s.lag for s in state.samples), default=0) <= hold_back
    )
    sustained = is_sustained(p99, p99_store / 1000, bounded, stored_final, delivered)
    rss_per_series = (rss1 - rss0) * 1024 / series
    print(
        f"  in {rate_in:,.0f} readings/s, stored {stored_at_end / run_s:,.0f} readings/s during "
        f"the run ({stored_final:,}/{delivered:,} in the end); latency p50 {p50:.2f}s "
        f"p99 {p99:.2f}s (histogram), p50 {p50_store / 1000:.2f}s p99 {p99_store / 1000:.2f}s "
        f"(store); lag {'bounded' if bounded else 'GROWING'}; simulator worst tick late "
        f"{state.report.max_lateness_s:.2f}s; RSS {rss_per_series:,.0f} bytes per series; "
        f"{'sustained' if sustained else 'NOT sustained'}",
        flush=True,
    )
    figures = {
        "bench": "soak",
        "devices": devices,
        "series": series,
        "workers": workers,
        "minutes": minutes,
        "readings_in": delivered,
        "in_per_s": round(rate_in),
        "stored_per_s": round(stored_at_end / run_s),
        "stored_final": stored_final,
        "p50_s": round(p50, 3),
        "p99_s": round(p99, 3),
        "store_p50_s": round(p50_store / 1000, 3),
        "store_p99_s": round(p99_store / 1000, 3),
        "lag": [[s.t, s.lag, s.backlog] for s in state.samples],
        "max_lag": max((s.lag for s in state.samples), default=0),
        "max_unconsumed": max((s.backlog for s in state.samples), default=0),
        "lag_bounded": bounded,
        "simulator_worst_late_s": round(state.report.max_lateness_s, 3),
        "rss_bytes_per_series": round(rss_per_series),
        "workers_rss_mib": round(rss1 / 1024, 1),
        "sustained": sustained,
    }
    print(json.dumps(figures))
    return figures
