"""The first fleet simulator: determinism, shape and bad options."""

from __future__ import annotations

import pytest

from producers.fleet import MODELS, Fleet
from producers.simulator import SimulationConfig, build_records


def test_same_seed_gives_the_same_readings() -> None:
    a, b = Fleet(40, list(MODELS), seed=3), Fleet(40, list(MODELS), seed=3)
    for t in range(5):
        assert a.tick(t * 1000).values == b.tick(t * 1000).values
    c = Fleet(40, list(MODELS), seed=4)
    assert c.tick(0).values != Fleet(40, list(MODELS), seed=3).tick(0).values


def test_every_device_reports_each_of_its_channels_once_per_tick() -> None:
    fleet = Fleet(8, ["grid", "machine"], seed=0)
    tick = fleet.tick(0)
    assert len(tick.values) == fleet.readings_per_tick == 4 * 6 + 4 * 5
    pairs = list(zip(tick.device_ids, tick.capabilities, strict=True))
    assert len(set(pairs)) == len(pairs)


def test_values_respect_channel_bounds() -> None:
    fleet = Fleet(50, ["grid"], seed=1)
    hum = [
        v
        for t in range(0, 86_400_000, 3_600_000)
        for c, v in zip(fleet.tick(t).capabilities, fleet.tick(t).values, strict=True)
        if c == "HUMIDITY"
    ]
    assert min(hum) >= 0.0 and max(hum) <= 100.0


def test_reading_ids_are_deterministic_and_unique() -> None:
    fleet = Fleet(5, ["battery"], seed=0)
    recs = build_records(fleet.tick(1000), 1, "default") + build_records(fleet.tick(2000), 2, "t")
    ids = [r["reading_id"] for r in recs]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "bat-00000/current@1000"


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"devices": 0}, "--devices"),
        ({"rate_hz": 0}, "--rate"),
        ({"speedup": -1}, "--speedup"),
        ({"duration_s": 0}, "--duration"),
    ],
)
def test_bad_options_name_the_option(kwargs: dict, option: str) -> None:
    base = {"devices": 1, "kinds": ("grid",)}
    with pytest.raises(ValueError, match=option):
        SimulationConfig(**(base | kwargs))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown device kind"):
        Fleet(3, ["toaster"])
