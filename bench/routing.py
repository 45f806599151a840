"""Cost of the worker's partition check (``streams.routing``) on well-keyed input.

``envirostream bench routing``: 20 batches of 1,000 devices' readings, all on their murmur2
partition, through :class:`ReadingsProcessor` with the check on and off (interleaved, best of
5), and :func:`split_misrouted` alone. The last line is JSON.
"""

from __future__ import annotations

import json
import time
from typing import Any

from schemas import AvroCodec
from streams.readings import InputRecord, ReadingsProcessor
from streams.routing import DeviceRouter, murmur2_partition, split_misrouted
from streams.validate import EventTimeBounds

__all__ = ["run_routing_bench"]

T0 = 1_767_225_600_000


def _reading(device: str, ts: int) -> dict[str, Any]:
    return {
        "reading_id": f"{device}@{ts}",
        "device_id": device,
        "device_type": "MACHINE",
        "sensor_id": f"{device}/t",
        "capability": "TEMPERATURE",
        "value": 1.0,
        "unit": "degC",
        "timestamp": ts,
        "sequence": 0,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }


def run_routing_bench(devices: int = 1000, batches: int = 20, rounds: int = 5) -> dict[str, Any]:
    codec = AvroCodec()
    names = (f"dev-{i}" for i in range(devices * 8))
    devs = [d for d in names if murmur2_partition(d.encode(), 4) == 0][:devices]
    work: list[list[InputRecord]] = []
    offset = 0
    for s in range(batches):
        values = codec.encode_batch(
            "UniversalSensorReading", [_reading(d, T0 + s * 1000) for d in devs]
        )
        work.append(
            [
                InputRecord("telemetry.readings", 0, offset + i, d.encode(), v)
                for i, (d, v) in enumerate(zip(devs, values, strict=True))
            ]
        )
        offset += len(values)

    def rate(partitions: int) -> float:
        p = ReadingsProcessor(
            codec,
            window_ms=60_000,
            lateness_ms=5000,
            window_label="1m",
            bounds=EventTimeBounds(0, 300_000),
        )
        p.router.set_partitions(partitions)
        started = time.perf_counter()
        for batch in work:
            p.process(batch, T0 / 1000)
        return offset / (time.perf_counter() - started)

    off, on = [], []
    for _ in range(rounds):
        off.append(rate(0))
        on.append(rate(4))
    records = [r for b in work for r in b]
    decoded = codec.decode_batch("UniversalSensorReading", [r.value or b"" for r in records])
    device_ids = [rec["device_id"] for rec in decoded if isinstance(rec, dict)]
    keep = list(range(len(records)))
    router = DeviceRouter(4)
    alone = []
    for _ in range(rounds * 4):
        started = time.perf_counter()
        split_misrouted(router, records, device_ids, keep)
        alone.append(time.perf_counter() - started)
    out = {
        "readings": offset,
        "process_check_off_per_s": round(max(off)),
        "process_check_on_per_s": round(max(on)),
        "check_alone_ns_per_reading": round(1e9 * min(alone) / len(records)),
    }
    print(
        f"bench routing: {offset:,} well-keyed readings; worker processing "
        f"{out['process_check_off_per_s']:,}/s without the check, "
        f"{out['process_check_on_per_s']:,}/s with it; the check alone "
        f"{out['check_alone_ns_per_reading']} ns/reading"
    )
    print(json.dumps(out))
    return out
