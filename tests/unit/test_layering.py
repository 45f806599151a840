"""The floors of the house: imports run down only (docs/architecture.md).

Every import of every module of the project is read from its source (also the imports
inside functions), so a lazy import cannot hide an arrow that runs back up.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Lower number = lower floor. A module may import its own package and any lower floor.
FLOORS: dict[str, int] = {
    "core": 0,
    "schemas": 1,
    "topics": 1,
    "producers": 2,
    "sinks": 2,
    "infra": 2,
    "streams": 3,
    "api": 4,
    "bench": 5,
    "envirostream": 6,
}


def imported_packages(path: Path) -> set[str]:
    """The project packages that ``path`` imports, at any depth of the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names & FLOORS.keys()


def modules() -> list[tuple[str, Path]]:
    return [
        (package, path) for package in FLOORS for path in sorted((ROOT / package).rglob("*.py"))
    ]


@pytest.mark.parametrize(("package", "path"), modules(), ids=lambda v: str(v))
def test_imports_run_down_only(package: str, path: Path) -> None:
    upward = sorted(
        other
        for other in imported_packages(path)
        if other != package and FLOORS[other] >= FLOORS[package]
    )
    assert not upward, (
        f"{path.relative_to(ROOT)} (floor {FLOORS[package]}, {package}) imports "
        f"{', '.join(f'{o} (floor {FLOORS[o]})' for o in upward)}: imports must run down"
    )


def test_every_package_has_a_floor() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages <= FLOORS.keys(), f"packages without a floor: {packages - FLOORS.keys()}"


def test_the_checker_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from streams.app import x\n    import bench.nab\n")
    assert imported_packages(module) == {"streams", "bench"}
