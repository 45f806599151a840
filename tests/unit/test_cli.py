"""The command table: one module per command, the parser built from it, clear extras errors."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest

from envirostream import commands
from envirostream.cli import KNOWN_COMMANDS, build_parser, main
from infra.harness import private_settings


def test_every_contract_command_is_in_the_table_once() -> None:
    assert tuple(commands.COMMANDS) == KNOWN_COMMANDS
    assert set(KNOWN_COMMANDS) == {
        "up", "worker", "simulate", "replay", "query", "infra", "topics", "status", "alerts",
        "dlq", "gateway", "bench", "api", "keys", "assets",
    }  # fmt: skip
    for name, command in commands.COMMANDS.items():
        module = getattr(commands, name)
        assert isinstance(module, ModuleType)
        assert (command.add_parser, command.run) == (module.add_parser, module.run)


def test_the_parser_is_built_from_the_table() -> None:
    parser = build_parser()
    args = parser.parse_args(["simulate", "--kinds", "grid,machine", "--devices", "3"])
    assert (args.command, args.kinds, args.devices) == ("simulate", ("grid", "machine"), 3)
    with pytest.raises(SystemExit):
        parser.parse_args(["simulate", "--kinds", "toaster"])


def test_bench_detection_names_the_extra_when_scikit_learn_is_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args: object) -> object:
        return None if name == "sklearn" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert main(["bench", "detection", "--offline"]) == 1
    err = capsys.readouterr().err
    assert "scikit-learn" in err and "pip install -e '.[bench]'" in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["bench", "soak", "--devices", "0"], "--devices"),
        (["bench", "soak", "--workers", "1,2"], "--workers"),
        (["bench", "scale", "--workers", "1,x"], "--workers"),
        (["bench", "scale", "--readings", "0"], "--readings"),
        (["bench", "series", "--seconds", "0"], "--seconds"),
        (["bench", "rollups", "--minutes", "0"], "--minutes"),
        (["bench", "rollups", "--devices", "-1"], "--devices"),
    ],
)
def test_scale_benches_refuse_bad_options_by_name_before_starting_anything(
    argv: list[str], named: str, capsys: pytest.CaptureFixture
) -> None:
    assert main(argv) == 1
    assert named in capsys.readouterr().err


def test_private_settings_leave_a_running_pipeline_alone() -> None:
    from core.settings import load_settings

    base = load_settings({})
    a, b = private_settings(base, "es-test-"), private_settings(base, "es-test-", app_id="x")
    try:
        assert a.data_dir != b.data_dir and a.data_dir.is_dir()
        assert len({a.kafka_port, a.kafka_controller_port, a.store_port, a.metrics_port}) == 4
        assert a.kafka_port != base.kafka_port and a.app_id != base.app_id
        assert b.app_id == "x"
    finally:
        a.data_dir.rmdir()
        b.data_dir.rmdir()
