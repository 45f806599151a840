"""Two tenants' simulators (and a replay) into one pipeline: apart in readings and aggregates.

Real Kafka and the chdb store (``services``), ``envirostream worker`` and the ``simulate`` /
``replay`` commands as child processes. The two simulators run the very same fleet (kinds,
seed, start) for tenants ``acme`` and ``globex``; each tenant's fleet is named apart, its
readings carry its tenant_id and its aggregates equal the recomputation from its own
readings. A replay with ``--tenant`` lands under its tenant too.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.settings import Settings, settings_environ
from infra.processes import free_port
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import REPO, WorkerProcess, wait_for_worker
from topics import TopicAdmin, topic_specs

FLEET = "--devices 4 --kinds machine --rate 1 --speedup 0 --duration 60 --seed 9"
START = "--start 2026-03-01T00:00:00Z"
PER_TENANT = 4 * 7 * 60  # 4 pump+motor units x 7 sensors x 60 ticks


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envirostream", *args],
        env=settings_environ(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def query(settings: Settings, sql: str) -> list[tuple]:
    return [tuple(r) for r in get_client(settings).query(sql).result_rows]


def test_two_tenants_land_apart(services: Settings, tmp_path: Path) -> None:
    settings = services.model_copy(update={"metrics_port": free_port()})
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    ClickHouseSink(get_client(settings), settings).setup()
    csv = tmp_path / "meter.csv"
    csv.write_text(
        "timestamp,value\n" + "".join(f"2026-03-01 00:00:{i:02d},{i}.5\n" for i in range(30))
    )
    for tenant in ("acme", "globex"):
        run = cli(settings, "simulate", *FLEET.split(), *START.split(), "--tenant", tenant)
        assert run.returncode == 0, run.stderr
        assert f"sent {PER_TENANT} readings" in run.stdout
    replay = f"replay {csv} --device initech-meter --capability voltage --tenant initech"
    run = cli(settings, *replay.split())
    assert run.returncode == 0, run.stderr
    bad = cli(settings, "simulate", "--tenant", "no/slash", *FLEET.split())
    assert bad.returncode != 0 and "tenant" in bad.stderr

    counts_sql = "SELECT tenant_id, count() FROM readings FINAL GROUP BY tenant_id"
    worker = WorkerProcess(settings, tmp_path / "worker.log")
    try:
        want = {"acme": PER_TENANT, "globex": PER_TENANT, "initech": 30}
        wait_for_worker(
            lambda: dict(query(settings, counts_sql)) == want, 120, "every reading", worker
        )
        windows_sql = (
            "SELECT tenant_id, device_id, capability, toUnixTimestamp64Milli(window_start), "
            "count, round(min, 6), round(max, 6) FROM aggregates FINAL"
        )
        recomputed_sql = (
            "SELECT tenant_id, device_id, capability, "
            "intDiv(toUnixTimestamp64Milli(ts), 10000) * 10000, "
            "toUInt64(count()), round(min(value), 6), round(max(value), 6) "
            "FROM readings FINAL GROUP BY tenant_id, device_id, capability, 4"
        )
        wait_for_worker(
            lambda: sorted(query(settings, windows_sql)) == sorted(query(settings, recomputed_sql)),
            120,
            "each tenant's aggregates",
            worker,
        )
    finally:
        worker.stop()
    by_tenant = "FROM readings FINAL GROUP BY tenant_id"
    devices = dict(query(settings, f"SELECT tenant_id, groupUniqArray(device_id) {by_tenant}"))
    assert all(d.startswith("acme.") for d in devices["acme"]) and len(devices["acme"]) == 4
    assert all(d.startswith("globex.") for d in devices["globex"])
    assert devices["initech"] == ["initech-meter"]
    totals = "SELECT tenant_id, sum(count) FROM aggregates FINAL GROUP BY tenant_id"
    per_tenant = dict(query(settings, totals))
    assert per_tenant == {"acme": PER_TENANT, "globex": PER_TENANT, "initech": 30}
