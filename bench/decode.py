"""``envirostream bench decode``: the consume+decode alternatives, side by side in one run.

On a private broker: fill ``telemetry.readings`` with N simulated readings, then read them
all back with each Kafka client — confluent-kafka ``consume(num_messages=…)`` and aiokafka
``getmany`` (the worker's client) — and each decoder: none (fetch only), fastavro's
``schemaless_reader`` per record (the old path) and the codec (the specialised reading
decoder, ``schemas/reading_decoder.py``). Every combination runs ``--rounds`` times,
interleaved, and the best is kept, so a busy machine slows them alike. Batches are
``ENVIROSTREAM_WORKER_BATCH_SIZE`` records, as the worker takes them. Prints readings/s per
combination; the last line is JSON.
"""

from __future__ import annotations

import json
from typing import Any

from bench.raw_read import CLIENTS, DECODERS, fill_readings, read_rate
from core.settings import Settings
from infra.harness import private_services, private_settings
from topics import TopicAdmin, topic_specs

__all__ = ["run_decode_bench"]


def run_decode_bench(base: Settings, readings: int = 200_000, rounds: int = 3) -> dict[str, Any]:
    if rounds < 1:
        msg = f"--rounds must be at least 1, got {rounds}"
        raise ValueError(msg)
    settings = private_settings(base, "envirostream-bench-decode-")
    print(f"bench decode: {readings:,} readings, {rounds} rounds, under {settings.data_dir}")
    with private_services(settings, store=False):
        TopicAdmin(settings).create_missing(topic_specs(settings))
        total, fill_s = fill_readings(settings, readings)
        print(f"  filled {total:,} readings in {fill_s:.1f}s", flush=True)
        best: dict[str, float] = {}
        for _ in range(rounds):
            for client in CLIENTS:
                for decoder in DECODERS:
                    key = f"{client}+{decoder}"
                    rate = read_rate(settings, total, client, decoder)
                    best[key] = max(best.get(key, 0.0), rate)
        for key, rate in best.items():
            print(f"  {key:<20} {rate:>10,.0f} readings/s")
        figures: dict[str, Any] = {"readings": total, "batch": settings.worker_batch_size}
        figures.update({f"{k}_per_s": round(v) for k, v in best.items()})
        print(json.dumps(figures))
        return figures
