"""A broker that goes away in the middle of a simulation: the producer retries, nothing is lost.

Own broker (it is stopped and started again here), so other modules' services are untouched.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.kafka import start_kafka, stop_kafka
from infra.processes import free_port
from tests.integration.conftest import REPO, make_settings, service_env
from tests.integration.test_simulator import read_back
from topics import TopicAdmin, topic_specs


def test_simulation_survives_a_broker_restart_and_delivers_everything(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    try:
        start_kafka(settings)
    except Exception as exc:
        stop_kafka(settings)
        pytest.fail(f"could not start Kafka: {exc}")
    try:
        TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
        env = service_env(settings) | {"ENVIROSTREAM_SIMULATOR_METRICS_PORT": str(free_port())}
        # 60 s of event time at 4x: ~15 s of wall time, during which the broker restarts.
        sim = subprocess.Popen(
            [sys.executable, "-m", "envirostream", "simulate", "--devices", "6",
             "--kinds", "machine", "--rate", "1", "--speedup", "4", "--duration", "60",
             "--start", "2026-01-01T00:00:00Z", "--seed", "3"],
            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(4)
        assert sim.poll() is None, "the simulation ended before the broker went away"
        assert stop_kafka(settings)
        time.sleep(3)  # producing into the void: librdkafka queues and retries
        start_kafka(settings)
        out, err = sim.communicate(timeout=180)
        assert sim.returncode == 0, out + err
        sent = re.search(r"sent (\d+) readings .* delivered (\d+), undelivered (\d+)", out)
        assert sent, out
        produced, delivered, undelivered = (int(g) for g in sent.groups())
        assert (delivered, undelivered) == (produced, 0)
        assert produced > 0
        back = read_back(settings, lambda r: True, produced)
        assert len({r["reading_id"] for r in back}) == produced  # each one, once
    finally:
        stop_kafka(settings)
