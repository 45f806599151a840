"""A worker does not load river (with scipy's statistics, scikit-learn and pandas under it)
unless its window model is the one that uses it: ~150 MiB and ~2 s per process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
HEAVY = ("river", "sklearn", "pandas")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys\n{code}\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_the_worker_and_its_default_detection_do_not_import_river() -> None:
    code = (
        "import streams.run\n"
        "from core.settings import Settings\n"
        "from streams.detection import detection_stage_from_settings\n"
        "detection_stage_from_settings(Settings())"
    )
    assert _loaded_after(code) == []


def test_the_hst_window_model_still_imports_it_when_chosen() -> None:
    code = "from streams.detect import WindowHST\nWindowHST().learn_one({'a': 1.0}, 0)"
    assert "river" in _loaded_after(code)


def test_an_insert_into_the_store_does_not_import_pandas() -> None:
    # clickhouse-connect checks each insert's data against pandas' DataFrame, importing it
    code = (
        "import sinks.client\n"
        "from clickhouse_connect.datatypes.registry import get_from_name\n"
        "from clickhouse_connect.driver.insert import InsertContext\n"
        "ctx = InsertContext('t', ['a'], [get_from_name('Int64')], data=[[1], [2]])\n"
        "assert ctx.row_count == 2"
    )
    assert _loaded_after(code) == []


def test_without_the_client_module_the_same_insert_imports_it() -> None:
    code = (
        "from clickhouse_connect.datatypes.registry import get_from_name\n"
        "from clickhouse_connect.driver.insert import InsertContext\n"
        "InsertContext('t', ['a'], [get_from_name('Int64')], data=[[1], [2]])"
    )
    assert "pandas" in _loaded_after(code)
