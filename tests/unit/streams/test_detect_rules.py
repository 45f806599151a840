"""Safety limits, physical ranges and the bad-input verdicts."""

from __future__ import annotations

import math

import pytest

from streams.detect import assess_reading, check_limits, in_physical_range
from streams.detect.rules import MAX_FUTURE_MS, MAX_PAST_MS


def test_cell_temperature_limits_by_severity() -> None:
    assert check_limits("BATTERY_PACK", "CELL_TEMPERATURE", 45.0) is None
    warn = check_limits("BATTERY_PACK", "CELL_TEMPERATURE", 55.0)
    crit = check_limits("BATTERY_PACK", "CELL_TEMPERATURE", 60.5)
    assert warn is not None and warn.severity == "WARNING"
    assert crit is not None and crit.severity == "CRITICAL"
    assert crit.rule == "limit:CELL_TEMPERATURE>60"


def test_limits_depend_on_device_kind_and_direction() -> None:
    assert check_limits("MACHINE", "CELL_TEMPERATURE", 90.0) is None
    low = check_limits("VEHICLE", "TYRE_PRESSURE", 590.0)
    assert low is not None and low.severity == "CRITICAL" and low.rule.endswith("<600")
    assert check_limits("VEHICLE", "TYRE_PRESSURE", 830.0) is None


def test_physical_range() -> None:
    assert not in_physical_range("STATE_OF_CHARGE", -1.0)
    assert in_physical_range("STATE_OF_CHARGE", 100.0)
    assert in_physical_range("GENERIC", -1e9)
    assert not in_physical_range("GENERIC", math.nan)


NOW = 1_800_000_000_000


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"value": math.nan}, ("REFUSE", "non_finite_value")),
        ({"value": -math.inf}, ("REFUSE", "non_finite_value")),
        ({"ts_ms": NOW + MAX_FUTURE_MS + 1}, ("REFUSE", "future_timestamp")),
        ({"ts_ms": NOW - MAX_PAST_MS - 1}, ("REFUSE", "stale_timestamp")),
        ({"value": 101.0}, ("SUSPECT", "out_of_physical_range")),
        ({"known_device_type": "VEHICLE"}, ("SUSPECT", "device_type_changed")),
        ({"ts_ms": NOW + MAX_FUTURE_MS}, ("OK", "")),
        ({}, ("OK", "")),
    ],
)
def test_assess_reading(kwargs: dict[str, object], expected: tuple[str, str]) -> None:
    base: dict[str, object] = {
        "capability": "HUMIDITY",
        "value": 40.0,
        "ts_ms": NOW,
        "now_ms": NOW,
        "device_type": "EDGE_HUB",
        "known_device_type": "EDGE_HUB",
    }
    assert assess_reading(**{**base, **kwargs}) == expected  # type: ignore[arg-type]
