"""`envirostream up` (the README's main command) end to end, without a terminal.

It starts the services it needs, runs worker + simulator with a summary, stops what it
started, and leaves the data queryable with `envirostream query`.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

from api.keys import find_key
from core.store_password import read_store_password
from infra.processes import ServiceProcess, port_open, read_pid
from producers.fleet import Fleet
from producers.models import KINDS
from sinks.client import get_client
from tests.integration.conftest import REPO, make_settings, service_env


def test_up_runs_the_pipeline_and_leaves_the_data_queryable(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, window_seconds=5, idle_close_seconds=3)
    env = service_env(settings)
    devices, seconds = 12, 30
    up = subprocess.run(
        [sys.executable, "-m", "envirostream", "up", "--devices", str(devices),
         "--speedup", "0", "--start", "2026-01-01T00:00:00Z", "--duration", str(seconds),
         "--for", "25"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    fleet = Fleet(devices, KINDS, seed=0)
    per_tick = fleet.readings_per_tick
    produced = per_tick * seconds
    tick = fleet.tick(0)
    # Windows are per (device, capability); a vehicle has four tyre-pressure sensors.
    series = len(set(zip(tick.device_ids, tick.capabilities, strict=True)))
    final = re.search(r"produced ([\d,]+) readings; stored readings ([\d,]+)", up.stdout)
    assert final, up.stdout[-2000:]
    assert int(final.group(1).replace(",", "")) == produced
    assert int(final.group(2).replace(",", "")) == produced
    assert "worker      up" in up.stdout  # the live summary saw the worker's metrics
    # `up` served the operator API beside the pipeline, and stopped it.
    assert f"operator API on http://127.0.0.1:{settings.api_port}" in up.stdout
    assert not port_open("127.0.0.1", settings.api_port)
    # The web view's key: its file is printed (0600), never the key itself.
    key_file = settings.data_dir / "operator.key"
    assert f"its key is in {key_file}" in up.stdout
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_text().strip()
    assert key.startswith("es_")

    # Everything `up` started is stopped again.
    for name in ("kafka", "store"):
        assert read_pid(ServiceProcess(name, settings.data_dir)) is None, f"{name} still runs"

    query = subprocess.run(
        [sys.executable, "-m", "envirostream", "query",
         "SELECT count() FROM aggregates FINAL", "--format", "CSV"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    try:
        assert query.returncode == 0, query.stderr
        assert int(query.stdout.strip()) == series * (seconds // 5)
        # The store was locked with a generated password that no output or log shows.
        password = read_store_password(settings.store_password_path)
        assert password
        logs = sorted((settings.data_dir / "logs").glob("*.log"))
        assert any(p.name == "store.log" for p in logs), logs
        texts = [up.stdout, up.stderr, query.stdout, query.stderr]
        texts += [p.read_text(errors="replace") for p in logs]
        assert not [t for t in texts if password in t]
        assert not [t for t in texts if key in t]
        # ... and it is a valid operate key of the simulated tenant.
        record = find_key(get_client(settings), key)
        assert record is not None and not record.revoked
        assert (record.tenant_id, record.scope) == ("default", "operate")
    finally:
        subprocess.run(
            [sys.executable, "-m", "envirostream", "infra", "down"],
            env=env, cwd=REPO, capture_output=True, timeout=120,
        )  # fmt: skip


def test_up_refuses_a_taken_api_port_before_starting_anything(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", settings.api_port))
        taken.listen()
        up = subprocess.run(
            [sys.executable, "-m", "envirostream", "up", "--for", "5"],
            env=service_env(settings), cwd=REPO, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert up.returncode == 2, up.stdout + up.stderr
    assert f"ENVIROSTREAM_API_PORT: 127.0.0.1:{settings.api_port} is already in use" in up.stderr
    assert read_pid(ServiceProcess("kafka", settings.data_dir)) is None
