"""Readings from a vendor's client that ignores the key rule still aggregate exactly.

Real Kafka (4 partitions) and the chdb store (``services``), two ``envirostream worker``
processes. A plain confluent-kafka ``Producer`` with its DEFAULT partitioner (librdkafka's
``consistent_random``: CRC32 of the key, not Java's murmur2) sends half of the devices keyed
by their id; the other half are sent null-keyed, spread over all 4 partitions. One worker is
SIGKILLed mid-run and restarted. Every window in ``aggregates`` must equal the exact
recomputation from the produced readings (count, sum, min, max), and an ``alerts ack`` of a
null-keyed device's alert must reach the worker that owns the device (state ACKNOWLEDGED).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from core.settings import Settings, settings_environ
from infra.harness import REPO_ROOT
from infra.processes import free_port
from schemas import AvroCodec
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from streams.routing import murmur2_partition
from tests.integration.conftest import WorkerProcess, wait_for_worker
from topics import READINGS, TopicAdmin, topic_specs

START_MS = 1_356_998_400_000  # 2013-01-01T00:00:00Z
DEVICES = [f"vendor-{i:02d}" for i in range(12)]
KEYED = DEVICES[:6]  # keyed by device id, librdkafka's default partitioner
HOT = "vendor-11"  # null-keyed; its cell temperature breaches 60 degC from HOT_FROM_S on
HOT_FROM_S = 40
SECONDS = 150
PHASE_1 = 80  # seconds produced before one worker is killed
WINDOW_MS = 10_000


def reading(device: str, second: int) -> dict[str, Any]:
    ts = START_MS + second * 1000
    normal = 20.0 + (DEVICES.index(device) % 5) + 0.37 * (second % 11)
    value = 65.0 + second % 3 if device == HOT and second >= HOT_FROM_S else normal
    return {
        "reading_id": f"{device}/cell_temperature@{ts}",
        "device_id": device,
        "device_type": "BATTERY_PACK",
        "sensor_id": f"{device}/cell_temperature",
        "capability": "CELL_TEMPERATURE",
        "value": value,
        "unit": "degC",
        "timestamp": ts,
        "sequence": second,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }


def produce(settings: Settings, seconds: range, codec: AvroCodec) -> dict[str, set[int]]:
    """Produce like a vendor would; returns the partitions each device landed on."""
    landed: dict[str, set[int]] = defaultdict(set)

    def delivered(err: Any, msg: Any) -> None:
        assert err is None, err
        device = codec.decode(msg.value(), "UniversalSensorReading")["device_id"]
        landed[device].add(msg.partition())

    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})  # default partitioner
    for second in seconds:
        for n, device in enumerate(DEVICES):
            value = codec.encode("UniversalSensorReading", reading(device, second))
            if device in KEYED:
                producer.produce(READINGS, value, device.encode(), on_delivery=delivered)
            else:  # null key, spread as a round-robin client would
                part = (second + n) % settings.topic_partitions
                producer.produce(READINGS, value, None, partition=part, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0
    return landed


def expected_windows() -> dict[tuple[str, int], tuple[int, float, float, float]]:
    out: dict[tuple[str, int], list[float]] = defaultdict(list)
    for device in DEVICES:
        for second in range(SECONDS):
            r = reading(device, second)
            out[(device, r["timestamp"] - r["timestamp"] % WINDOW_MS)].append(r["value"])
    return {k: (len(v), sum(v), min(v), max(v)) for k, v in out.items()}


def stored_windows(settings: Settings) -> dict[tuple[str, int], tuple[int, float, float, float]]:
    rows = (
        get_client(settings)
        .query(
            "SELECT device_id, toUnixTimestamp64Milli(window_start), count, mean * count, min, "
            "max FROM aggregates FINAL WHERE device_id LIKE 'vendor-%'"
        )
        .result_rows
    )
    return {(r[0], int(r[1])): (int(r[2]), float(r[3]), float(r[4]), float(r[5])) for r in rows}


def windows_match(settings: Settings) -> bool:
    want, got = expected_windows(), stored_windows(settings)
    if set(want) != set(got):
        return False
    for key, (count, total, lo, hi) in want.items():
        g = got[key]
        if g[0] != count or abs(g[1] - total) > 1e-6 * max(1.0, abs(total)):
            return False
        if (g[2], g[3]) != (lo, hi):
            return False
    return True


def alert_of(settings: Settings, device: str) -> tuple[str, str] | None:
    rows = (
        get_client(settings)
        .query(f"SELECT alert_id, state FROM alerts FINAL WHERE device_id = '{device}'")
        .result_rows
    )
    return (str(rows[0][0]), str(rows[0][1])) if rows else None


def stored_readings(settings: Settings) -> int:
    q = "SELECT count() FROM readings FINAL WHERE device_id LIKE 'vendor-%'"
    return int(get_client(settings).query(q).result_rows[0][0])


def test_default_partitioner_and_null_keys_aggregate_exactly_with_two_workers(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = services.model_copy(update={"alert_quiet_period_seconds": 600})
    parts = settings.topic_partitions
    assert parts >= 4
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    ClickHouseSink(get_client(settings), settings).setup()
    codec = AvroCodec()
    logs: Path = tmp_path_factory.mktemp("logs")

    def start(name: str) -> WorkerProcess:
        own = settings.model_copy(update={"metrics_port": free_port()})
        return WorkerProcess(own, logs / f"{name}.log")

    landed = produce(settings, range(PHASE_1), codec)
    # The input really is misrouted: keyed devices off their murmur2 partition, null-keyed
    # devices on every partition.
    misrouted = [d for d in KEYED if landed[d] != {murmur2_partition(d.encode(), parts)}]
    assert misrouted, "librdkafka's default partitioner put every device where murmur2 does"
    assert all(len(landed[d]) == parts for d in DEVICES if d not in KEYED)

    workers = {"a": start("worker-a"), "b": start("worker-b")}
    try:
        wait_for_worker(
            lambda: stored_readings(settings) >= len(DEVICES) * PHASE_1 // 2,
            120,
            "half of the first readings stored",
            workers["b"],
        )
        workers["b"].kill()  # SIGKILL mid-run: moved readings may be sent again
        produce(settings, range(PHASE_1, SECONDS), codec)
        workers["b"] = start("worker-b2")
        wait_for_worker(
            lambda: stored_readings(settings) == len(DEVICES) * SECONDS,
            120,
            "every reading stored once",
            workers["a"],
        )
        wait_for_worker(lambda: windows_match(settings), 120, "the exact aggregates", workers["a"])
        fired = alert_of(settings, HOT)
        assert fired is not None and fired[1] == "FIRING", fired
        ack = subprocess.run(
            [sys.executable, "-m", "envirostream", "alerts", "ack", fired[0], "--operator", "t"],
            env=settings_environ(settings),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert ack.returncode == 0, ack.stderr
        wait_for_worker(
            lambda: alert_of(settings, HOT) == (fired[0], "ACKNOWLEDGED"),
            60,
            "the ACKNOWLEDGED alert",
            workers["a"],
        )
        time.sleep(1)
        assert all(w.alive() for w in workers.values())
    finally:
        for w in workers.values():
            w.stop()
    # Each device's windows were emitted by one owner: one alert, never one per partition.
    rows = (
        get_client(settings)
        .query("SELECT device_id, count() FROM alerts FINAL GROUP BY device_id")
        .result_rows
    )
    assert {str(r[0]): int(r[1]) for r in rows} == {HOT: 1}
