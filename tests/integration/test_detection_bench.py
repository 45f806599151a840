"""``bench detection`` through the real pipeline gives what the in-process stage gives.

A small seeded fleet (8 devices, 6 h of event time, failures after 2 h, a 1 h warm-up) is
run both ways: private Kafka + store + ``envirostream worker`` (the default mode), and the
stage in-process (``offline=True``). The alerts scored from ClickHouse, the ground truth
read from the ``readings`` table and the baseline fed from it must give the same report as
the offline run; the private services leave nothing behind.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest

from bench.detection import run_detection_bench
from core.settings import Settings
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration


def _run(base: Settings, *, offline: bool) -> dict[str, Any]:
    return run_detection_bench(
        base, offline=offline, devices=8, hours=6.0, onset_delay_h=2.0, seed=7
    )


def _private_dirs() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("envirostream-detection-*"))


def test_pipeline_mode_scores_what_the_offline_stage_scores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make_settings(tmp_path, detector_warmup=60)
    before = _private_dirs()

    pipeline = _run(base, offline=False)
    out = capsys.readouterr().out
    assert json.loads(out.strip().splitlines()[-1]) == pipeline
    assert "ground truth in ClickHouse = simulator's" in out
    assert _private_dirs() == before  # removed after the run

    offline = _run(base, offline=True)

    overall = pipeline["envirostream"]["rows"]["overall"]
    assert overall["incidents"] > 0 and overall["detected"] > 0 and pipeline["alerts"] > 0
    assert pipeline["mode"] == "pipeline" and offline["mode"] == "offline"
    assert pipeline["readings"] == offline["readings"]
    assert pipeline["alerts"] == offline["alerts"]
    assert pipeline["envirostream"] == offline["envirostream"]
    assert pipeline["isolation_forest"] == offline["isolation_forest"]
    assert pipeline["worker_readings_per_s"] > 0
