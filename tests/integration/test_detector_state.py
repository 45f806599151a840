"""Learned detector state and operator feedback survive worker crashes (real Kafka, store).

One machine's bearing temperature, one reading a minute of event time (2013: a replay far
from the wall clock), through ``envirostream worker`` child processes, each SIGKILLed:

1. worker 1 learns 120 normal readings (warm-up 60) and checkpoints them to the compacted
   detector-state changelog; it is killed;
2. worker 2 sees a deviation (56-57.5 degC on a 50 +- 0.5 degC bearing). A worker that
   started cold would still be warming up (it replays only the readings after the last
   commit) and stay silent; a restored one raises the anomaly alert. The operator marks it a
   false positive with ``envirostream alerts false-positive`` (the CLI's code path): the
   alert is RESOLVED and the raised threshold is checkpointed; worker 2 is killed;
3. worker 3 sees a second, larger deviation (62-63.5 degC) that opens a new alert with the
   default threshold, then a safety-limit breach (85 degC). With the raised threshold
   restored, the only new alert is the limit's.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any

import pytest

from core.settings import Settings
from envirostream.feedback import send_feedback
from schemas import AvroCodec
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from streams.alert_log import read_latest_state
from streams.detection import DetectionStage, SeriesState
from tests.integration.conftest import WorkerProcess, wait_for_worker
from tests.integration.test_alert_sink import metric
from topics import READINGS, TopicAdmin, detector_state_topic, topic_specs
from topics.producer import RecordProducer

START_MS = 1_356_998_400_000  # 2013-01-01T00:00:00Z
MIN = 60_000
DEVICE = "mach-state"
SENSOR = f"{DEVICE}/bearing_temperature"


def normal(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [50.0 + rng.gauss(0.0, 0.5) for _ in range(n)]


def produce(settings: Settings, first_minute: int, values: Sequence[float]) -> int:
    codec = AvroCodec()
    records = []
    for i, value in enumerate(values, start=first_minute):
        ts = START_MS + i * MIN
        records.append(
            {
                "reading_id": f"{SENSOR}@{ts}",
                "device_id": DEVICE,
                "device_type": "MACHINE",
                "sensor_id": SENSOR,
                "capability": "BEARING_TEMPERATURE",
                "value": value,
                "unit": "degC",
                "timestamp": ts,
                "sequence": i,
                "quality": "GOOD",
                "tenant_id": "default",
                "attributes": {},
                "label": None,
            }
        )
    producer = RecordProducer(settings.bootstrap_servers)
    producer.send_batch(
        READINGS,
        [DEVICE.encode()] * len(records),
        codec.encode_batch("UniversalSensorReading", records),
    )
    assert producer.flush(30) == 0
    return first_minute + len(values)


def checkpointed(settings: Settings) -> SeriesState | None:
    """The bearing series as last checkpointed to the changelog, if any."""
    latest = read_latest_state(
        settings.bootstrap_servers, detector_state_topic(settings), range(4), timeout=10
    )
    stage = DetectionStage()
    stage.load_checkpoint(latest.items())
    dev = stage.devices.get(("default", DEVICE))
    return dev.series.get(SENSOR) if dev is not None else None


def alerts(settings: Settings) -> list[dict[str, Any]]:
    result = get_client(settings).query(
        "SELECT alert_id, rule, state, first_seen, attributes FROM alerts FINAL "
        f"WHERE device_id = '{DEVICE}' ORDER BY first_seen"
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def minute(ts: Any) -> int:
    return round((ts.timestamp() * 1000 - START_MS) / MIN)


def test_models_and_false_positive_thresholds_survive_kills(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = services.model_copy(
        update={
            "app_id": "state-test",
            "detector_warmup": 60,
            "detector_checkpoint_seconds": 1,
            "alert_quiet_period_seconds": 3600,
        }
    )
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    ClickHouseSink(get_client(settings), settings).setup()
    logs = tmp_path_factory.mktemp("logs")

    # 1. learn, checkpoint, crash
    nxt = produce(settings, 0, normal(120, seed=0))
    worker = WorkerProcess(settings, logs / "worker-1.log")
    try:

        def learned_all() -> bool:
            series = checkpointed(settings)
            return series is not None and series.detector.n_learned == 120

        wait_for_worker(learned_all, 90, "a checkpoint of 120 learned readings", worker)
    finally:
        worker.kill()

    # 2. a deviation right after the restart: alerted, because the model is warm
    nxt = produce(settings, nxt, [56.0, 57.0, 56.5, 57.5, 56.0])
    worker = WorkerProcess(settings, logs / "worker-2.log")
    try:
        wait_for_worker(lambda: len(alerts(settings)) == 1, 90, "the anomaly alert", worker)
        restored = metric(settings, "envirostream_detector_states_restored_total")
        (fired,) = alerts(settings)
        assert fired["rule"] == "anomaly:BEARING_TEMPERATURE"
        assert 120 <= minute(fired["first_seen"]) <= 124
        assert restored is not None and restored >= 1

        print(send_feedback(settings, fired["alert_id"], "false-positive", operator="test"))

        def marked() -> bool:
            (alert,) = alerts(settings)
            series = checkpointed(settings)
            return (
                alert["state"] == "RESOLVED"
                and alert["attributes"].get("feedback") == "false_positive"
                and series is not None
                and series.signals["score"].threshold is not None
            )

        wait_for_worker(marked, 60, "the false positive applied and checkpointed", worker)
        series = checkpointed(settings)
        assert series is not None
        threshold = series.signals["score"].threshold  # the per-reading score's, raised
        assert threshold is not None
        score = float(alerts(settings)[0]["attributes"]["score:BEARING_TEMPERATURE"])
        assert threshold > score > settings.detector_threshold
    finally:
        worker.kill()

    # 3. a larger deviation stays quiet with the restored threshold; a limit breach does not
    nxt = produce(settings, nxt, normal(30, seed=3))
    nxt = produce(settings, nxt, [62.0, 63.0, 62.5, 63.5, 62.0])
    nxt = produce(settings, nxt, normal(20, seed=4))
    limit_minute = nxt
    produce(settings, nxt, [85.0, 85.0, 85.0])
    worker = WorkerProcess(settings, logs / "worker-3.log")
    try:
        wait_for_worker(lambda: len(alerts(settings)) == 2, 90, "the limit alert", worker)
        time.sleep(2)  # an extra alert, if any, would be stored by now
        rows = alerts(settings)
    finally:
        worker.stop()
    assert [(r["rule"], minute(r["first_seen"])) for r in rows[1:]] == [
        ("limit:BEARING_TEMPERATURE:high", limit_minute)
    ]
    assert rows[0]["state"] == "RESOLVED"
