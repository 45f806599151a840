"""``envirostream bench simulator``: readings/s generated + encoded + acknowledged, one process.

On a private broker (own data dir and ports, so a running pipeline is untouched), a fleet of
``--devices`` devices (all four kinds, 20% failing) is played in accelerated mode
(``speedup=0``: as fast as the broker acknowledges). The figure counts only readings the
broker acknowledged; CPU is this process's user+system time (librdkafka threads included).
A second, broker-less pass splits the cost into generation (numpy physics + scenarios) and
Avro encoding, to show what limits the rate. A real-time pass (1 Hz, wall clock) then
reports how late the latest tick of the same fleet started. The last line is JSON.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import replace

from core.settings import Settings
from infra.harness import private_services, private_settings
from producers.encoding import TickEncoder
from producers.models import KINDS
from producers.simulator import SimulationConfig, run_simulation
from schemas import AvroCodec
from topics import READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer, wait_for_broker

__all__ = ["run_simulator_bench"]

START_MS = 1_767_225_600_000


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _stage_costs(config: SimulationConfig, ticks: int) -> tuple[float, float, int]:
    """Seconds per reading spent generating and encoding (no broker)."""
    fleet = config.fleet()
    encoder = TickEncoder(fleet, AvroCodec())
    gen = enc = 0.0
    n = 0
    for i in range(ticks):
        t0 = time.perf_counter()
        tick = fleet.tick(START_MS + i * 1000)
        t1 = time.perf_counter()
        encoder.encode(tick, i)
        t2 = time.perf_counter()
        gen, enc, n = gen + t1 - t0, enc + t2 - t1, n + len(tick.rows)
    return gen / n, enc / n, fleet.readings_per_tick


def _real_time_lag(settings: Settings, config: SimulationConfig, seconds: int) -> float:
    """Run the same fleet in real time (1 Hz); how late the latest tick started, seconds."""
    rt = replace(config, speedup=1.0, start_ms=None, duration_s=seconds)
    producer = RecordProducer(settings)
    report = run_simulation(rt, producer, AvroCodec(), READINGS)
    del producer
    return report.max_lateness_s


def run_simulator_bench(
    base: Settings, devices: int = 10_000, seconds: int = 10, realtime_seconds: int = 10
) -> dict:
    config = SimulationConfig(
        devices=devices,
        kinds=KINDS,
        speedup=0,
        start_ms=START_MS,
        duration_s=seconds,
        seed=1,
        failure_rate=0.2,
    )
    gen_s, enc_s, per_tick = _stage_costs(config, 3)
    print(
        f"bench simulator: {devices:,} devices, {per_tick:,} readings per tick, "
        f"{seconds} ticks (1 Hz event time, accelerated)",
        flush=True,
    )
    print(
        f"  without a broker: generate {1 / gen_s:>12,.0f} readings/s, "
        f"encode {1 / enc_s:>12,.0f} readings/s",
        flush=True,
    )
    settings = private_settings(base, "envirostream-bench-sim-")
    with private_services(settings, store=False):
        wait_for_broker(settings, timeout=60)
        TopicAdmin(settings).create_missing(topic_specs(settings))
        producer = RecordProducer(settings)
        cpu0, t0 = _cpu_s(), time.perf_counter()
        report = run_simulation(config, producer, AvroCodec(), READINGS)
        wall, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
        del producer  # disconnect before the broker stops
        lag_s = _real_time_lag(settings, config, realtime_seconds)
    rate = report.delivered / wall
    print(
        f"  through the broker:  {report.delivered:,} acknowledged in {wall:.1f}s = "
        f"{rate:,.0f} readings/s; CPU {cpu:.1f}s ({cpu / wall:.2f} cores); "
        f"undelivered {report.undelivered}",
        flush=True,
    )
    print(
        f"  real time (1 Hz, {realtime_seconds}s): latest tick started {lag_s:.2f}s after "
        "its due time" + (" (keeps up)" if lag_s < 0.1 else " (falls behind)"),
        flush=True,
    )
    figures = {
        "bench": "simulator",
        "devices": devices,
        "readings": report.delivered,
        "undelivered": report.undelivered,
        "wall_s": round(wall, 3),
        "readings_per_s": round(rate),
        "cpu_s": round(cpu, 3),
        "cpu_cores": round(cpu / wall, 2),
        "cpu_us_per_reading": round(cpu / max(1, report.delivered) * 1e6, 2),
        "realtime_worst_lag_s": round(lag_s, 3),
        "generate_per_s": round(1 / gen_s),
        "encode_per_s": round(1 / enc_s),
    }
    print(json.dumps(figures))
    return figures
