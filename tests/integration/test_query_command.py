"""``envirostream query`` is read-only unless ``--write``: a DROP is refused with a message
naming ``--write`` and the table stays; with ``--write`` the same kind of statement runs."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings, load_settings, settings_environ
from infra.harness import REPO_ROOT
from infra.processes import free_port
from infra.store import start_store, stop_store
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    tmp: Path = tmp_path_factory.mktemp("query")
    settings = load_settings({}, data_dir=tmp / "data", store_port=free_port(), log_level="WARNING")
    try:
        start_store(settings)
        ClickHouseSink(get_client(settings), settings).setup()
    except Exception as exc:
        stop_store(settings)
        pytest.fail(f"could not start the store: {exc}")
    yield settings
    stop_store(settings)


def query(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "envirostream", "query", *args],
        env=settings_environ(settings),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tables(settings: Settings) -> set[str]:
    rows = get_client(settings).query("SHOW TABLES").result_rows
    return {str(r[0]) for r in rows}


def test_a_write_is_refused_without_write_and_runs_with_it(store: Settings) -> None:
    assert "readings" in tables(store)
    out = query(store, "DROP TABLE readings")
    assert out.returncode != 0
    assert "--write" in out.stderr and "read-only" in out.stderr
    assert "Traceback" not in out.stderr
    assert "readings" in tables(store)  # still there

    out = query(store, "INSERT INTO readings (reading_id) VALUES ('x')")
    assert out.returncode != 0 and "--write" in out.stderr
    assert get_client(store).command("SELECT count() FROM readings") == 0

    out = query(store, "SELECT count() FROM readings", "--format", "CSV")
    assert (out.returncode, out.stdout) == (0, "0\n"), out.stderr

    out = query(store, "CREATE TABLE scratch (a Int8) ENGINE = Memory", "--write")
    assert out.returncode == 0, out.stderr
    assert "scratch" in tables(store)
    out = query(store, "DROP TABLE scratch", "--write")
    assert out.returncode == 0, out.stderr
    assert "scratch" not in tables(store)
