"""``--tenant`` of simulate, up, replay and gateway mqtt: valid names only, passed through."""

from __future__ import annotations

import pytest

from envirostream.cli import build_parser
from envirostream.commands._simulation import simulation_config


@pytest.mark.parametrize("command", ["simulate", "up"])
def test_the_simulated_fleet_writes_the_tenant_given(command: str) -> None:
    args = build_parser().parse_args([command, "--tenant", "utility-a"])
    assert simulation_config(args).tenant_id == "utility-a"
    assert simulation_config(build_parser().parse_args([command])).tenant_id == "default"


def test_replay_and_gateway_take_a_tenant() -> None:
    parser = build_parser()
    assert parser.parse_args(["replay", "f.csv", "--device", "d", "--tenant", "t1"]).tenant == "t1"
    assert parser.parse_args(["replay", "f.csv", "--device", "d"]).tenant == "default"
    assert parser.parse_args(["gateway", "mqtt", "--tenant", "t2"]).tenant == "t2"
    assert parser.parse_args(["gateway", "mqtt"]).tenant is None


@pytest.mark.parametrize("bad", ["a/b", "", ".x", "x" * 65, "über"])
def test_invalid_tenant_names_are_refused_naming_the_rule(
    bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulate", "--tenant", bad])
    assert "tenant names are 1-64 letters" in capsys.readouterr().err
