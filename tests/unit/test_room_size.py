"""Small rooms: no module over 500 lines and no class over 300 lines in the pipeline's
packages, so no god object grows back unnoticed (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "streams",
    "sinks",
    "producers",
    "api",
    "bench",
    "core",
    "topics",
    "schemas",
    "infra",
    "envirostream",
)
MAX_MODULE_LINES = 500
MAX_CLASS_LINES = 300

MODULES = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def class_sizes(path: Path) -> dict[str, int]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: (node.end_lineno or node.lineno) - node.lineno + 1
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
    }


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_classes_stay_small(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"
    big = {name: n for name, n in class_sizes(path).items() if n > MAX_CLASS_LINES}
    assert not big, f"{path.relative_to(ROOT)}: classes over {MAX_CLASS_LINES} lines: {big}"


def test_the_class_measure_counts_the_whole_body(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("class A:\n    x = 1\n\n    def f(self):\n        return 2\n")
    assert class_sizes(module) == {"A": 5}
