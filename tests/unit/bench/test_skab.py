"""bench skab on tiny SKAB-like files (the CI clone has no dataset): loading, errors, run."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from bench.skab import COLUMNS, load_corpus, protocol_sequences, resolve_skab_dir, run_skab_bench
from bench.skab_tuning import GRID
from core.errors import EnviroStreamError
from core.settings import load_settings

ROWS = 600
FAULT = range(400, 520)


def _write(path: Path, start_s: int, seed: int, labels: bool = True) -> None:
    rng = random.Random(seed)
    head = ["datetime", *COLUMNS] + (["anomaly", "changepoint"] if labels else [])
    lines = [";".join(head)]
    for i in range(ROWS):
        load = math.sin(i / 30) + 0.3 * rng.gauss(0, 1)
        fault = i in FAULT
        values = [
            0.026 + 0.001 * load,
            0.040 + 0.001 * load,
            1.0 + 0.2 * load,
            0.08 + 0.05 * load,
            79.0 + 0.1 * load,
            26.0 + 0.01 * rng.gauss(0, 1),
            232.0 + rng.gauss(0, 1),
            32.0 + 0.5 * load - (8.0 if fault else 0.0),  # the valve: flow against the load
        ]
        secs = start_s + i
        stamp = f"2020-03-09 {10 + secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}"
        row = [stamp, *(f"{v:.5f}" for v in values)]
        if labels:
            row += [str(int(fault)), str(int(i in (FAULT.start, FAULT.stop - 1)))]
        lines.append(";".join(row))
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def skab_dir(tmp_path: Path) -> Path:
    (tmp_path / "valve1").mkdir()
    (tmp_path / "anomaly-free").mkdir()
    _write(tmp_path / "valve1" / "1.csv", ROWS, 2)  # later in time than 0.csv
    _write(tmp_path / "valve1" / "0.csv", 0, 1)
    _write(tmp_path / "anomaly-free" / "anomaly-free.csv", 0, 3, labels=False)
    return tmp_path


def test_a_missing_dataset_names_the_option_and_the_setting(tmp_path: Path) -> None:
    settings = load_settings({})
    with pytest.raises(EnviroStreamError, match="--skab-dir") as err:
        resolve_skab_dir(tmp_path / "nowhere", settings)
    assert "ENVIROSTREAM_SKAB_DIR" in str(err.value)
    with pytest.raises(EnviroStreamError, match=r"\(ENVIROSTREAM_SKAB_DIR\)"):
        resolve_skab_dir(None, load_settings({}, skab_dir=tmp_path))


def test_files_load_in_time_order_and_protocols_lay_them_out(skab_dir: Path) -> None:
    free, files = load_corpus(skab_dir)
    assert [f.name for f in files] == ["valve1/0.csv", "valve1/1.csv"]
    assert files[0].timestamps[1] - files[0].timestamps[0] == 1000
    assert sum(files[0].anomaly) == len(FAULT) and sum(files[0].changepoint) == 2
    assert free is not None and sum(free.anomaly) == 0
    assert [[f.name for f in s] for s in protocol_sequences("history", free, files)] == [
        ["valve1/0.csv", "valve1/1.csv"]
    ]
    assert len(protocol_sequences("free-history", free, files)[0]) == 3
    assert len(protocol_sequences("fresh", free, files)) == 2
    with pytest.raises(EnviroStreamError, match="--skab-protocol"):
        protocol_sequences("random", free, files)


def test_offline_run_finds_the_valve_and_prints_json_last(
    skab_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run_skab_bench(load_settings({}), offline=True, skab_dir=skab_dir)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last) == out
    assert out["rows"] == 2 * ROWS and out["tp"] + out["fn"] == 2 * len(FAULT)
    # the flow drop against the load is found after 400 rows of normal operation
    first = out["per_file"]["valve1/0.csv"]
    assert first["f1"] > 0.7 and first["far"] < 15, out["per_file"]
    assert out["alerts_by_rule"], out


def test_the_grid_varies_the_joint_signal_only() -> None:
    assert len({json.dumps(c, sort_keys=True) for c in GRID}) == len(GRID) >= 4
    assert all(set(c) <= {"joint_threshold", "joint_smooth"} for c in GRID)
