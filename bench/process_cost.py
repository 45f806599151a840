"""The worker's per-reading work in process, without Kafka or the store.

``bench throughput`` puts this beside the worker's drain rate: the simulated fleet it
fills the topic with (1,000 devices of every kind, seed 1), encoded as the simulator does,
goes through :meth:`streams.readings.ReadingsProcessor.process` in batches of the worker's
size, with the worker's garbage-collector thresholds. The processing runs with the
settings' detection stage and without it, and reports
process CPU µs per reading (the best of ``rounds``, alternating). What the drain costs
beyond these is Kafka's consumer, the sink's inserts, the outputs, checkpoints, and
competition with the broker and store for the cores.
"""

from __future__ import annotations

import gc
import time

from core.settings import Settings
from producers.encoding import TickEncoder
from producers.models import KINDS
from producers.simulator import SimulationConfig
from schemas import AvroCodec
from streams.detection import detection_stage_from_settings
from streams.readings import ReadingsProcessor
from streams.records import InputRecord
from streams.validate import EventTimeBounds
from topics import READINGS

__all__ = ["process_cost"]

START_MS = 1_767_225_600_000  # the fill's start (bench.raw_read.fill_readings)


def _batches(settings: Settings, readings: int) -> tuple[list[list[InputRecord]], int]:
    fleet = SimulationConfig(devices=1000, kinds=KINDS, seed=1, failure_rate=0.0).fleet()
    encoder = TickEncoder(fleet, AvroCodec())
    records: list[InputRecord] = []
    tick = 0
    while len(records) < readings:
        keys, values = encoder.encode(fleet.tick(START_MS + tick * 1000), tick)
        first = len(records)
        records.extend(
            InputRecord(READINGS, 0, first + i, k, v)
            for i, (k, v) in enumerate(zip(keys, values, strict=True))
        )
        tick += 1
    size = settings.worker_batch_size
    return [records[i : i + size] for i in range(0, len(records), size)], len(records)


def _run(settings: Settings, batches: list[list[InputRecord]], n: int, detect: bool) -> float:
    processor = ReadingsProcessor(
        AvroCodec(),
        window_ms=settings.window_ms,
        lateness_ms=settings.lateness_ms,
        window_label=settings.window_label,
        bounds=EventTimeBounds(0, 10**13),  # simulated event times, any wall clock
        detection=detection_stage_from_settings(settings) if detect else None,
    )
    gc.collect()
    default = gc.get_threshold()
    gc.set_threshold(*settings.gc_thresholds)  # as the worker runs (core.gc_tuning)
    try:
        started = time.process_time()
        for batch in batches:
            processor.process(batch, START_MS / 1000)
        return (time.process_time() - started) / n * 1e6
    finally:
        gc.set_threshold(*default)


def process_cost(settings: Settings, readings: int, rounds: int = 2) -> dict[str, float]:
    """CPU µs per reading of ``ReadingsProcessor.process``: ``with_detection_us``,
    ``without_detection_us`` and their difference, ``detection_us``."""
    batches, n = _batches(settings, readings)
    with_d: list[float] = []
    without: list[float] = []
    for _ in range(rounds):
        without.append(_run(settings, batches, n, detect=False))
        with_d.append(_run(settings, batches, n, detect=True))
    best_with, best_without = min(with_d), min(without)
    return {
        "with_detection_us": round(best_with, 2),
        "without_detection_us": round(best_without, 2),
        "detection_us": round(best_with - best_without, 2),
    }
