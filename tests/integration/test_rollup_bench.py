"""``envirostream bench rollups`` on a real store: a fleet's minute refreshed both ways, the
hour rollup counting every window sent (the bench raises otherwise)."""

from __future__ import annotations

import json

import pytest

from bench.rollup_refresh import fleet_series
from envirostream.cli import main

pytestmark = pytest.mark.integration


def test_the_bench_refreshes_a_fleets_minute_both_ways(capsys: pytest.CaptureFixture) -> None:
    series = fleet_series(60)
    assert len({(d, c) for _, d, c, _ in series}) == len(series) > 600  # > one piece
    assert main(["bench", "rollups", "--devices", "60", "--minutes", "2"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["series"] == len(series)
    assert out["pieces"] >= 2
    assert len(out["by_piece_s"]) == len(out["whole_period_s"]) == 2
