"""A device that falls silent through the real worker: one DEVICE_OFFLINE, resolved on return.

Real Kafka and the chdb store (``services``), ``envirostream worker`` in a child process.
A machine sends a reading every 0.2 s of event time (2013: a replay far from the wall
clock), then nothing: with ``ENVIROSTREAM_DEVICE_OFFLINE_FACTOR`` 10 its limit is 2 s, so
the ``ENVIROSTREAM_DEVICE_OFFLINE_MIN_SECONDS`` floor of 4 s of wall clock decides. The
worker must store exactly one FIRING offline alert (and keep it one while the silence goes
on), and RESOLVED once the device sends again, at the event time of its first new reading.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from confluent_kafka import Consumer

from core.settings import Settings
from schemas import AvroCodec
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import WorkerProcess, wait_for_worker
from topics import ALERTS, READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer

START_MS = 1_356_998_400_000  # 2013-01-01T00:00:00Z
DEVICE = "mch-silent"
KEY = f"default/{DEVICE}/offline"
STEP_MS = 200
FLOOR_S = 4.0
BEFORE = range(30)  # event time 0 .. 5.8 s, then silence
AFTER = range(150, 160)  # back at 30 s of event time (windows after the idle-closed one)


def reading(i: int) -> dict[str, Any]:
    ts = START_MS + i * STEP_MS
    return {
        "reading_id": f"{DEVICE}/flow@{ts}",
        "device_id": DEVICE,
        "device_type": "MACHINE",
        "sensor_id": f"{DEVICE}/flow",
        "capability": "FLOW",
        "value": 100.0 + 0.1 * (i % 7),
        "unit": "l/min",
        "timestamp": ts,
        "sequence": i,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }


def produce(settings: Settings, steps: range, codec: AvroCodec) -> None:
    records = [reading(i) for i in steps]
    producer = RecordProducer(settings.bootstrap_servers)
    producer.send_batch(
        READINGS,
        [DEVICE.encode()] * len(records),
        codec.encode_batch("UniversalSensorReading", records),
    )
    assert producer.flush(30) == 0


def stored(settings: Settings) -> list[tuple[str, str, int]]:
    """``(rule, state, version)`` of every alert of DEVICE in ``alerts FINAL``."""
    rows = (
        get_client(settings)
        .query(f"SELECT rule, state, version FROM alerts FINAL WHERE device_id = '{DEVICE}'")
        .result_rows
    )
    return [(str(r[0]), str(r[1]), int(r[2])) for r in rows]


def alert_log(settings: Settings, codec: AvroCodec, timeout: float = 15) -> list[dict[str, Any]]:
    """Every record of KEY in telemetry.alerts, in log order (read until quiet)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"test-offline-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([ALERTS])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    idle = 0
    try:
        while time.monotonic() < deadline and idle < 3:
            msg = consumer.poll(1.0)
            if msg is None:
                idle += 1 if values else 0
                continue
            idle = 0
            if msg.error() is None and msg.key() == KEY.encode():
                values.append(msg.value() or b"")
    finally:
        consumer.close()
    return [r for r in codec.decode_batch("Alert", values) if isinstance(r, dict)]


def test_a_silent_device_fires_once_and_resolves_when_it_returns(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = services.model_copy(
        update={"device_offline_factor": 10.0, "device_offline_min_seconds": FLOOR_S}
    )
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    codec = AvroCodec()
    ClickHouseSink(get_client(settings), settings).setup()
    log_dir = tmp_path_factory.mktemp("logs")

    produce(settings, BEFORE, codec)
    worker = WorkerProcess(settings, log_dir / "worker.log")
    try:
        wait_for_worker(
            lambda: stored(settings) == [("DEVICE_OFFLINE", "FIRING", 1)],
            90,
            "one FIRING DEVICE_OFFLINE alert",
            worker,
        )
        time.sleep(3 * FLOOR_S)  # the silence goes on: no second alert, no repeat
        assert stored(settings) == [("DEVICE_OFFLINE", "FIRING", 1)]
        produce(settings, AFTER, codec)
        wait_for_worker(
            lambda: stored(settings) == [("DEVICE_OFFLINE", "RESOLVED", 2)],
            60,
            "the DEVICE_OFFLINE alert RESOLVED",
            worker,
        )
    finally:
        worker.stop()

    log = alert_log(settings, codec)
    assert [(a["state"], a["version"]) for a in log] == [("FIRING", 1), ("RESOLVED", 2)]
    fired, resolved = log
    last_before = START_MS + BEFORE[-1] * STEP_MS
    assert fired["alert_id"] == resolved["alert_id"] == f"{KEY}@{last_before}"
    assert fired["first_seen"] == last_before
    assert float(fired["attributes"]["silent_s"]) >= FLOOR_S
    assert fired["attributes"]["usual_interval_s"] == "0.2"
    assert resolved["resolved_at"] == START_MS + AFTER[0] * STEP_MS
