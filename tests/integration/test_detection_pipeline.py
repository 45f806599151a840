"""A failing device through the real worker: one alert, resolved after recovery, kill-safe.

Real Kafka and the chdb store (``services``), ``envirostream worker`` in a child process.
A battery pack's cell temperature (event times in 2013: a replay far from the wall clock)
runs normal, then above the 60 degC CRITICAL safety limit for 60 s, then normal again. The
worker is SIGKILLed in the middle of the incident and restarted; the alert log must hold
exactly one FIRING and one RESOLVED record for the incident, and the ``alerts`` table one
alert, RESOLVED a quiet period (event time) after the last breach.
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
from tests.integration.test_alert_sink import metric
from topics import ALERTS, READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer

START_MS = 1_356_998_400_000  # 2013-01-01T00:00:00Z
DEVICE = "bat-runaway"
KEY = f"default/{DEVICE}/device"  # one alert per device incident
QUIET_S = 60
BREACH_START_S, BREACH_END_S = 100, 160  # seconds [start, end) above the limit
KILL_AT_S = 130  # the first worker sees readings up to here
END_S = 300
HOT, NORMAL = 65.0, 25.0


def reading(second: int) -> dict[str, Any]:
    ts = START_MS + second * 1000
    value = HOT if BREACH_START_S <= second < BREACH_END_S else NORMAL + 0.1 * (second % 7)
    return {
        "reading_id": f"{DEVICE}/cell_temperature@{ts}",
        "device_id": DEVICE,
        "device_type": "BATTERY_PACK",
        "sensor_id": f"{DEVICE}/cell_temperature",
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


def produce(settings: Settings, seconds: range, codec: AvroCodec) -> None:
    records = [reading(s) for s in seconds]
    producer = RecordProducer(settings.bootstrap_servers)
    producer.send_batch(
        READINGS,
        [DEVICE.encode()] * len(records),
        codec.encode_batch("UniversalSensorReading", records),
    )
    assert producer.flush(30) == 0


def alert_log(settings: Settings, codec: AvroCodec, timeout: float = 15) -> list[dict[str, Any]]:
    """Every record of KEY in telemetry.alerts, in log order (read until quiet)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"test-alerts-{uuid.uuid4()}",
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


def stored_state(settings: Settings) -> str | None:
    rows = (
        get_client(settings)
        .query(f"SELECT state FROM alerts FINAL WHERE alert_key = '{KEY}'")
        .result_rows
    )
    return str(rows[0][0]) if rows else None


def test_failing_device_yields_one_alert_resolved_after_recovery_despite_a_kill(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = services.model_copy(
        update={"alert_quiet_period_seconds": QUIET_S, "detector_warmup": 50}
    )
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    codec = AvroCodec()
    ClickHouseSink(get_client(settings), settings).setup()
    log_dir = tmp_path_factory.mktemp("logs")

    produce(settings, range(KILL_AT_S), codec)
    worker = WorkerProcess(settings, log_dir / "worker-1.log")
    try:
        wait_for_worker(lambda: stored_state(settings) == "FIRING", 90, "the FIRING alert", worker)
        time.sleep(2)  # let it count repeats and commit, then crash mid-incident
    finally:
        worker.kill()

    produce(settings, range(KILL_AT_S, END_S), codec)
    worker = WorkerProcess(settings, log_dir / "worker-2.log")
    try:
        wait_for_worker(
            lambda: stored_state(settings) == "RESOLVED", 120, "the RESOLVED alert", worker
        )
        time.sleep(2)  # a duplicate, if any, would show up now
        suppressed = metric(settings, "envirostream_duplicate_alerts_suppressed_total")
    finally:
        worker.stop()

    log = alert_log(settings, codec)
    assert [(a["state"], a["version"], a["severity"]) for a in log] == [
        ("FIRING", 1, "CRITICAL"),
        ("RESOLVED", 2, "CRITICAL"),
    ]
    last_breach = START_MS + (BREACH_END_S - 1) * 1000
    fired, resolved = log
    assert fired["alert_id"] == resolved["alert_id"] == f"{KEY}@{START_MS + BREACH_START_S * 1000}"
    assert resolved["last_seen"] == last_breach
    assert resolved["resolved_at"] == last_breach + QUIET_S * 1000
    # repeats are counted once each: never more than the breaching readings after the first
    assert 0 < resolved["duplicates"] <= BREACH_END_S - BREACH_START_S - 1
    assert suppressed is not None and suppressed > 0

    rows = (
        get_client(settings)
        .query(
            "SELECT alert_id, state, version FROM alerts FINAL "
            f"WHERE device_id = '{DEVICE}' ORDER BY alert_id"
        )
        .result_rows
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [(fired["alert_id"], "RESOLVED", 2)]
