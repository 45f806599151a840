"""``simulate --via mqtt``: a fleet through Mosquitto and the gateway, complete after two kills.

Real Mosquitto, the gateway, a worker and the simulator as child processes; Kafka and the
chdb store (``services``). While the fleet publishes, the gateway is SIGKILLed twice and
restarted (same client id: its persistent session holds what it had not acknowledged). Every
reading the broker acknowledged to the simulator must be stored exactly once, with the
simulator's tenant.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.settings import Settings, settings_environ
from infra.mosquitto import start_mosquitto, stop_mosquitto
from infra.processes import free_port
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import REPO, WorkerProcess, wait_for_worker
from tests.integration.test_mqtt_gateway import Gateway
from topics import TopicAdmin, topic_specs

TENANT = "sim-mqtt"
SIMULATE = (
    f"simulate --via mqtt --tenant {TENANT} --devices 12 --kinds battery,machine --rate 2 "
    "--speedup 8 --duration 150 --start 2026-06-01T00:00:00Z --seed 5"
)


def stored(settings: Settings) -> tuple[int, int]:
    """(rows, distinct reading ids) of the simulator's tenant in ``readings``."""
    q = f"SELECT count(), uniqExact(reading_id) FROM readings FINAL WHERE tenant_id = '{TENANT}'"
    rows, distinct = get_client(settings).query(q).result_rows[0]
    return int(rows), int(distinct)


def test_fleet_over_mqtt_arrives_complete_despite_two_gateway_kills(
    services: Settings, tmp_path: Path
) -> None:
    settings = services.model_copy(
        update={"mqtt_port": free_port(), "gateway_metrics_port": 0, "metrics_port": free_port()}
    )
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    ClickHouseSink(get_client(settings), settings).setup()
    start_mosquitto(settings)
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    gateway = Gateway(settings, tmp_path / "gateway-1.log")
    sim_log = tmp_path / "simulate.log"
    simulate = subprocess.Popen(
        [sys.executable, "-m", "envirostream", *SIMULATE.split()],
        env=settings_environ(settings),
        cwd=REPO,
        stdout=sim_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        for kill in (1, 2):
            time.sleep(5)
            assert simulate.poll() is None, f"the simulator ended early:\n{sim_log.read_text()}"
            gateway.stop(signal.SIGKILL)
            time.sleep(1)
            gateway = Gateway(settings, tmp_path / f"gateway-{kill + 1}.log")
        assert simulate.wait(120) == 0, sim_log.read_text()
        found = re.search(
            r"sent (\d+) readings .* delivered (\d+), undelivered 0", sim_log.read_text()
        )
        assert found is not None, sim_log.read_text()
        published = int(found[1])
        assert published == int(found[2]) and published > 5000
        wait_for_worker(
            lambda: stored(settings)[1] >= published, 180, "every published reading", worker
        )
        time.sleep(2)  # anything beyond (another tenant, a duplicate id) would show now
        rows, distinct = stored(settings)
    finally:
        if simulate.poll() is None:
            simulate.kill()
        gateway.stop()
        worker.stop()
        stop_mosquitto(settings)
    assert distinct == published and rows == published
