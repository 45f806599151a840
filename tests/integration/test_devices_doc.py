"""The worked examples of docs/devices.md, run exactly as written, end in ClickHouse.

Real Mosquitto (``infra.mosquitto``), the MQTT gateway and a worker as child processes, Kafka
and the chdb store (``services``). Every fenced block marked ``devices-example`` in
docs/devices.md is taken from the page: ``sh`` blocks are run with ``sh -eu`` in one
directory, in page order; a ``java`` block is saved under the file name its fence gives. The
readings they describe must then be in the ``readings`` table with their values.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from core.settings import Settings
from infra.mosquitto import add_device, start_mosquitto, stop_mosquitto
from infra.processes import free_port
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import REPO, WorkerProcess, wait_for_worker
from tests.integration.test_mqtt_gateway import Gateway
from topics import TopicAdmin, topic_specs

PAGE = REPO / "docs" / "devices.md"
FENCE = re.compile(r"^```(\w+) devices-example(?: (\S+))?\n(.*?)^```$", re.S | re.M)
DEVICE = "acme-pack-7"
T = 1_767_225_600_000
# (device, capability, event time) -> value: what the page's examples send.
EXPECTED = {
    (DEVICE, "CELL_VOLTAGE", T): 3.712,
    (DEVICE, "CELL_TEMPERATURE", T + 1000): 24.5,
    (DEVICE, "CELL_TEMPERATURE", T + 2000): 24.75,
    ("acme-meter-1", "LINE_CURRENT", T): 398.0,
    ("acme-meter-2", "LINE_CURRENT", T + 60_000): 401.25,
}


def examples() -> list[tuple[str, str | None, str]]:
    """(language, file name, text) of every example block, in page order."""
    return [(m[1], m[2], m[3]) for m in FENCE.finditer(PAGE.read_text())]


def stored(settings: Settings) -> dict[tuple[str, str, int], float]:
    rows = (
        get_client(settings)
        .query(
            "SELECT device_id, capability, toUnixTimestamp64Milli(ts), value FROM readings FINAL "
            "WHERE device_id LIKE 'acme-%'"
        )
        .result_rows
    )
    return {(r[0], r[1], int(r[2])): float(r[3]) for r in rows}


def test_the_page_has_the_examples_it_promises() -> None:
    langs = [lang for lang, _, _ in examples()]
    assert langs.count("sh") >= 4 and langs.count("java") == 1, langs
    text = "\n".join(body for _, _, body in examples())
    assert "mosquitto_pub" in text and "kcat" in text and "partitioner=murmur2_random" in text


def test_every_example_reaches_clickhouse_with_its_values(
    services: Settings, tmp_path: Path
) -> None:
    for tool in ("mosquitto_pub", "kcat", "xxd", "java"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            pytest.fail(f"{tool} not on PATH: run `make bootstrap` (infra/install_kcat.sh, …)")
    settings = services.model_copy(
        update={"mqtt_port": free_port(), "gateway_metrics_port": 0, "metrics_port": free_port()}
    )
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    ClickHouseSink(get_client(settings), settings).setup()
    start_mosquitto(settings)
    password = add_device(settings, DEVICE)
    time.sleep(0.5)  # the broker reloads its password file
    libs = settings.cache_dir / "kafka-4.1.1" / "libs"
    env = {
        **os.environ,
        "MQTT_HOST": "127.0.0.1",
        "MQTT_PORT": str(settings.mqtt_port),
        "DEVICE_PASSWORD": password,
        "KAFKA": settings.bootstrap_servers,
        "KAFKA_CLIENT_CLASSPATH": f"{libs}/*",
    }
    work = tmp_path / "vendor"
    work.mkdir()
    gateway = Gateway(settings, tmp_path / "gateway.log")
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        for lang, name, body in examples():
            if lang == "java":
                assert name, "a java example names its file in the fence"
                (work / name).write_text(body)
                continue
            done = subprocess.run(
                ["sh", "-eu", "-c", body],
                cwd=work,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
                check=False,
            )
            assert done.returncode == 0, f"example failed:\n{body}\n{done.stdout}\n{done.stderr}"
        wait_for_worker(
            lambda: set(stored(settings)) >= set(EXPECTED), 120, "the examples' readings", worker
        )
    finally:
        worker.stop()
        gateway.stop()
        stop_mosquitto(settings)
    got = stored(settings)
    assert {k: got[k] for k in EXPECTED} == EXPECTED
    assert len(got) == len(EXPECTED)  # nothing else, nothing twice
