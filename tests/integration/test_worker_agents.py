"""A user's own agent runs inside the real worker (``ENVIROSTREAM_WORKER_AGENTS``).

Real Kafka and the chdb store; ``envirostream worker`` in a child process with
``tests.integration.aggregate_counter`` as its agent module. Readings of three devices over
35 s of event time make twelve 10-second windows; the agent must see every aggregate the
worker produced (the same windows as the ``aggregates`` table), and a module that does not
import must stop the worker with a message naming the setting.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from schemas import AvroCodec
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.aggregate_counter import SEEN_FILE
from tests.integration.conftest import REPO, WorkerProcess, service_env, wait_for_worker
from topics import READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DEVICES = ("agent-dev-1", "agent-dev-2", "agent-dev-3")
SECONDS = 35


def readings() -> list[dict[str, Any]]:
    return [
        {
            "reading_id": f"{device}/t@{s}",
            "device_id": device,
            "device_type": "MACHINE",
            "sensor_id": f"{device}/t",
            "capability": "TEMPERATURE",
            "value": 20.0 + s % 3,
            "unit": "degC",
            "timestamp": START_MS + s * 1000,
            "sequence": s,
            "quality": "GOOD",
            "tenant_id": "default",
            "attributes": {},
            "label": None,
        }
        for s in range(SECONDS)
        for device in DEVICES
    ]


def seen(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"records": 0, "windows": []}


def test_a_user_agent_counts_the_aggregates_of_a_real_worker(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = services.model_copy(update={"worker_agents": "tests.integration.aggregate_counter"})
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    records = readings()
    producer = RecordProducer(settings.bootstrap_servers)
    values = AvroCodec().encode_batch("UniversalSensorReading", records)
    producer.send_batch(READINGS, [r["device_id"].encode() for r in records], values)
    assert producer.flush(60) == 0
    client = get_client(settings)
    ClickHouseSink(client, settings).setup()  # idempotent; the worker does it too
    expected = len(DEVICES) * 4  # windows [0,10), [10,20), [20,30) and, once idle, [30,40)
    out = settings.data_dir / "faust" / SEEN_FILE

    worker = WorkerProcess(settings, tmp_path_factory.mktemp("logs") / "worker.log")
    try:
        wait_for_worker(
            lambda: client.command("SELECT count() FROM aggregates FINAL") == expected,
            60,
            "aggregates in ClickHouse",
            worker,
        )
        wait_for_worker(
            lambda: len(seen(out)["windows"]) == expected,
            60,
            "aggregates seen by the agent",
            worker,
        )
        stored = client.query(
            "SELECT device_id, capability, toString(window_start) FROM aggregates FINAL"
        ).result_rows
        got = seen(out)
        assert {w[0] for w in got["windows"]} == set(DEVICES)
        assert len({(d, c, s[:19]) for d, c, s in stored}) == expected
        assert got["records"] >= expected  # at least once: a replay may repeat one
    finally:
        worker.stop()


def test_an_agent_module_that_does_not_import_stops_the_worker_naming_the_setting(
    services: Settings,
) -> None:
    settings = services.model_copy(update={"worker_agents": "tests.integration.no_such_agents"})
    proc = subprocess.run(
        [sys.executable, "-m", "envirostream", "worker"],
        env=service_env(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "ENVIROSTREAM_WORKER_AGENTS" in proc.stderr
    assert "cannot import module 'tests.integration.no_such_agents'" in proc.stderr
