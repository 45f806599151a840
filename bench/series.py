"""``envirostream bench series``: memory per (device, capability) series, and lookup cost.

What the worker keeps per series is built the way the worker builds it: a seeded fleet's
readings (Avro, as on the topic) go through ``ReadingsProcessor`` with the detection stage
of the settings (windows per device, the seasonal detector and every signal's state per
series, device-level state, alert book). ``tracemalloc`` counts the bytes Python and numpy
hold after the readings (results dropped, garbage collected) against before; divided by the
series, that is bytes per series, whatever the mix of per-device and per-series state.

The lookup cost is the worker's two dict lookups per reading (device, then sensor) on a
dict of ``series`` keys: its bytes per entry, and nanoseconds per lookup at that size
beside a 1,000-key dict (a flat ratio means the cost does not grow with the fleet).

The last line is JSON.
"""

from __future__ import annotations

import gc
import json
import random
import time
import tracemalloc
from dataclasses import dataclass

from core.errors import EnviroStreamError
from core.settings import Settings
from producers.encoding import TickEncoder
from producers.models import KINDS
from producers.simulator import SimulationConfig
from schemas import AvroCodec
from streams.detection import detection_stage_from_settings
from streams.readings import ReadingsProcessor
from streams.records import InputRecord

__all__ = [
    "SeriesMemory",
    "dict_lookup",
    "lookup_ns",
    "measure_series_state",
    "run_series_bench",
]

TOPIC = "telemetry.readings"
START_MS = 1_767_225_600_000
GIB = 1024**3


@dataclass(frozen=True)
class SeriesMemory:
    devices: int
    series: int  # (device, capability)
    sensors: int  # (device, sensor): the detector's unit; a pack has several cells
    readings: int
    bytes: int

    @property
    def bytes_per_series(self) -> float:
        return self.bytes / self.series

    def gib_for(self, series: int) -> float:
        return self.bytes_per_series * series / GIB


def measure_series_state(settings: Settings, devices: int, ticks: int) -> SeriesMemory:
    """Feed ``ticks`` seconds of a seeded ``devices`` fleet through the worker's processing;
    the bytes its state holds afterwards (one partition, as one worker sees it)."""
    fleet = SimulationConfig(devices=devices, kinds=KINDS, seed=1, failure_rate=0.0).fleet()
    codec = AvroCodec()
    encoder = TickEncoder(fleet, codec)
    first = codec.decode_batch("UniversalSensorReading", encoder.encode(fleet.tick(START_MS), 0)[1])
    rows = [r for r in first if isinstance(r, dict)]
    series = {(r["device_id"], r["capability"]) for r in rows}
    sensors = {(r["device_id"], r["sensor_id"]) for r in rows}
    del first, rows
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    processor = ReadingsProcessor(
        codec,
        window_ms=settings.window_ms,
        lateness_ms=settings.lateness_ms,
        window_label=settings.window_label,
        detection=detection_stage_from_settings(settings),
    )
    readings = 0
    for i in range(ticks):
        # The input is freed after each batch: what stays traced is the processor's state
        # (and the fleet's, created before and updated in place).
        keys, values = encoder.encode(fleet.tick(START_MS + i * 1000), i)
        batch = [
            InputRecord(TOPIC, 0, readings + n, k, v)
            for n, (k, v) in enumerate(zip(keys, values, strict=True))
        ]
        readings += len(batch)
        processor.process(batch)
        del batch, keys, values
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del processor
    return SeriesMemory(devices, len(series), len(sensors), readings, held)


def _keys(series: int) -> list[tuple[str, str]]:
    return [(f"dev-{i // 17:07d}", f"CAP_{i % 17:02d}") for i in range(series)]


def dict_lookup(series: int) -> float:
    """Bytes per entry of a dict of ``series`` (device, capability) keys (the table only).

    >>> 30 < dict_lookup(1000) < 200
    True
    """
    table = dict.fromkeys(_keys(series), 0)
    return table.__sizeof__() / series


def lookup_ns(sizes: tuple[int, ...], lookups: int = 200_000, repeats: int = 5) -> list[float]:
    """Nanoseconds per random lookup in a dict of each size: the best of ``repeats`` rounds,
    the sizes interleaved in every round (so a busy machine slows them alike)."""
    rng = random.Random(1)
    tables = [dict.fromkeys(_keys(n), 0) for n in sizes]
    probes = [rng.choices(list(t), k=lookups) for t in tables]
    best = [float("inf")] * len(sizes)
    for _ in range(repeats):
        for i, (table, probe) in enumerate(zip(tables, probes, strict=True)):
            t0 = time.perf_counter()
            for k in probe:
                table[k]
            best[i] = min(best[i], (time.perf_counter() - t0) / lookups * 1e9)
    return best


def run_series_bench(settings: Settings, devices: int = 2000, ticks: int = 30) -> dict:
    if devices < 1 or ticks < 1:
        msg = f"bench series: --devices and --seconds must be >= 1, got {devices} and {ticks}"
        raise EnviroStreamError(msg)
    print(
        f"bench series: {devices:,} devices, {ticks} ticks through the worker's processing "
        "(tracemalloc)",
        flush=True,
    )
    t0 = time.perf_counter()
    mem = measure_series_state(settings, devices, ticks)
    took = time.perf_counter() - t0
    print(
        f"  {mem.series:,} (device, capability) series ({mem.sensors:,} sensors), "
        f"{mem.readings:,} readings in {took:.0f}s: "
        f"{mem.bytes / 2**20:,.1f} MiB held = {mem.bytes_per_series:,.0f} bytes per series; "
        f"1,000,000 series ≈ {mem.gib_for(1_000_000):.2f} GiB",
        flush=True,
    )
    small_b, big_b = dict_lookup(1000), dict_lookup(1_000_000)
    small_ns, mid_ns, big_ns = lookup_ns((1000, 70_000, 1_000_000))
    print(
        f"  dict of (device, capability), best of 5 interleaved rounds: 1,000 keys "
        f"{small_ns:.0f} ns/lookup ({small_b:.0f} B/entry); 70,000 keys {mid_ns:.0f} ns/lookup; "
        f"1,000,000 keys {big_ns:.0f} ns/lookup ({big_b:.0f} B/entry)",
        flush=True,
    )
    figures = {
        "bench": "series",
        "devices": devices,
        "ticks": ticks,
        "series": mem.series,
        "sensors": mem.sensors,
        "bytes_per_sensor": round(mem.bytes / mem.sensors),
        "readings": mem.readings,
        "state_bytes": mem.bytes,
        "bytes_per_series": round(mem.bytes_per_series),
        "gib_per_million_series": round(mem.gib_for(1_000_000), 3),
        "lookup_ns_1k": round(small_ns, 1),
        "lookup_ns_70k": round(mid_ns, 1),
        "lookup_ns_1m": round(big_ns, 1),
        "dict_bytes_per_entry_1m": round(big_b, 1),
    }
    print(json.dumps(figures))
    return figures
