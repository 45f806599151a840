"""A forged detector-state record runs nothing (real Kafka, store and worker).

Anyone who can write to the detector-state changelog used to be able to run code in every
worker (the records were pickles). Here a hostile writer puts, on every partition of the
changelog, a pickle that would create a marker file when loaded, the same pickle compressed
as the worker's records are, and a well-formed record with a wrong type. The worker starts,
restores its partitions, refuses all three kinds (counted by reason), creates no file, and
the device they name is judged from a cold start: its readings are stored as usual.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import zlib
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from schemas import AvroCodec
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import WorkerProcess, wait_for_worker
from tests.integration.test_alert_sink import metric
from tests.integration.test_pipeline import produce
from topics import TopicAdmin, detector_state_topic, topic_specs
from topics.producer import RecordProducer

pytestmark = pytest.mark.integration

DEVICE = "forged-dev"


class _Payload:
    """Unpickling this calls ``os.system`` (what a hostile changelog writer would send)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_forged_changelog_record_is_refused_and_runs_nothing(
    services: Settings, tmp_path: Path
) -> None:
    settings = services
    marker = tmp_path / "pwned"
    raw = pickle.dumps(_Payload(marker))
    assert not marker.exists()
    records = [
        raw,  # a bare pickle
        zlib.compress(pickle.dumps((3, _Payload(marker)))),  # shaped like a worker's record
        zlib.compress(json.dumps({"format": "envirostream.device", "version": 3,
                                  "device_type": 7, "signals": {}, "series": []}).encode()),
    ]  # fmt: skip
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    topic = detector_state_topic(settings)
    producer = RecordProducer(settings.bootstrap_servers)
    for partition in range(settings.topic_partitions):
        producer.send_batch(
            topic,
            [
                f"default/{DEVICE}-pickle".encode(),
                f"default/{DEVICE}-zpickle".encode(),
                f"default/{DEVICE}".encode(),
            ],
            records,
            partitions=[partition] * len(records),
        )
    assert producer.flush(30) == 0

    client = get_client(settings)
    ClickHouseSink(client, settings).setup()
    now_ms = int(time.time() * 1000) - 60_000
    readings = [
        {
            "reading_id": f"{DEVICE}@{now_ms + i * 1000}",
            "device_id": DEVICE,
            "device_type": "MACHINE",
            "sensor_id": f"{DEVICE}/t",
            "capability": "TEMPERATURE",
            "value": 40.0 + i % 3,
            "unit": "degC",
            "timestamp": now_ms + i * 1000,
            "sequence": i,
            "quality": "GOOD",
            "tenant_id": "default",
            "attributes": {},
            "label": None,
        }
        for i in range(20)
    ]
    produce(settings, readings, AvroCodec())
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    stored = f"SELECT count() FROM readings FINAL WHERE device_id = '{DEVICE}'"

    def rejected() -> float:
        return sum(
            metric(settings, "envirostream_checkpoints_rejected_total", reason=r) or 0.0
            for r in ("undecodable", "version", "invalid")
        )

    try:
        wait_for_worker(lambda: client.command(stored) == 20, 90, "the device's readings", worker)
        wait_for_worker(lambda: rejected() >= 3, 30, "the forged records refused", worker)
        assert worker.alive()
    finally:
        worker.stop()
    assert not marker.exists(), "a changelog record ran code in the worker"
