"""Every ``>>>`` example in the project's modules runs, so the docs cannot rot.

Modules are found by reading the package folders, so a new module's examples run without
listing it anywhere. Same as ``pytest --doctest-modules core envirostream ...``, but part of
``pytest tests/unit`` (and so of ``make test`` and ``make unit``).
"""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "core", "schemas", "topics", "producers", "sinks", "infra", "streams", "api", "bench",
    "envirostream",
)  # fmt: skip


def _modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if ">>>" in path.read_text(encoding="utf-8"):
                parts = path.relative_to(ROOT).with_suffix("").parts
                names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


MODULES = _modules_with_examples()


def test_examples_are_found() -> None:
    assert len(MODULES) >= 20, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_module_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    tests = [t for t in doctest.DocTestFinder().find(module) if t.examples]
    # A `>>>` outside any docstring (or in an object imported from elsewhere) never runs.
    assert tests, f"{name} has '>>>' but no doctest is collected from it"
    out = io.StringIO()
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()
