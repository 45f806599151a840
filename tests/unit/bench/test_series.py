"""Memory per (device, capability) series of the worker's state, and its dict lookup.

The state is built by the worker's own processing (``bench.series.measure_series_state``:
a seeded fleet through ``ReadingsProcessor`` with the settings' detection stage) and counted
with tracemalloc; the bounds say a million series fit in a few GiB (this machine has 24).
"""

from __future__ import annotations

import pytest

from bench.series import GIB, dict_lookup, measure_series_state
from core.settings import Settings, load_settings


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings({})


def test_a_million_series_of_state_fit_in_under_6_gib(settings: Settings) -> None:
    mem = measure_series_state(settings, devices=12, ticks=6)
    assert mem.series >= 12 * 10  # every kind reports several capabilities
    assert mem.sensors >= mem.series
    # Measured about 4.2 kB; below 1 kB would mean the state was not counted at all.
    assert 1_000 < mem.bytes_per_series < 6_000
    assert mem.gib_for(1_000_000) < 6.0


def test_the_state_of_a_series_does_not_grow_with_its_readings(settings: Settings) -> None:
    short = measure_series_state(settings, devices=12, ticks=6)
    long = measure_series_state(settings, devices=12, ticks=30)  # five times the readings
    assert long.readings == 5 * short.readings
    assert long.bytes < 1.2 * short.bytes


def test_a_dict_of_a_million_series_keys_costs_under_100_bytes_an_entry() -> None:
    per_entry = dict_lookup(1_000_000)
    assert per_entry < 100
    assert per_entry * 1_000_000 < 0.1 * GIB
