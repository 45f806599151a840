"""``envirostream bench api`` end to end on a small store: figures for every request kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import REPO, make_settings, service_env

pytestmark = pytest.mark.integration


def test_bench_api_reports_latency_of_each_request_kind(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "envirostream", "bench", "api", "--readings", "400000",
         "--requests", "5"],
        env=service_env(settings), cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    assert figures["readings"] == 400_000 and figures["requests"] == 5
    for kind in ("alerts", "history", "devices"):
        f = figures[kind]
        assert 0 < f["p50_ms"] <= f["p95_ms"] <= f["max_ms"], (kind, f)
    assert figures["alerts"]["items"] == 100
    assert figures["devices"]["items"] == 900  # the other tenant's 100 devices stay out
    # 200 readings per series over 48 h: a day holds 100 a capability -> raw points
    assert figures["history"]["resolution"] == "raw"
    assert 196 <= figures["history"]["items"] <= 200  # 2 x about 100, by where now falls
