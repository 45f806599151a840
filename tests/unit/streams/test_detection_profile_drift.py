"""The profile-drift signal: a limited series leaving its daily profile towards its limit.

Pure: readings go straight to ``DetectionStage.observe`` (event time, 1 reading a minute).
A pump's vibration repeats a daily cycle for a day (the warm-up), then either goes on
repeating it or wears (a quadratic ramp over 6 h, as the simulator's bearing wear).
"""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from streams.alerts import AlertPolicy
from streams.detection import DetectionConfig, DetectionStage
from streams.signals.profile_drift import ProfileDriftState

MIN = 60_000
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SRC = ("telemetry.readings", 0)
DAY = 1_440


def _reading(i: int, value: float, capability: str, dtype: str) -> dict[str, Any]:
    ts = START + i * MIN
    return {
        "reading_id": f"m-1/{capability}@{ts}",
        "device_id": "m-1",
        "device_type": dtype,
        "sensor_id": f"m-1/{capability}",
        "capability": capability,
        "value": value,
        "timestamp": ts,
        "sequence": i,
        "quality": "GOOD",
        "tenant_id": "default",
    }


def _vibration(i: int, rng: random.Random, wear_from: int | None) -> float:
    """mm/s: 1.6 plus a shift cycle (8 h) and noise; plus 3 r^2 over 6 h once worn."""
    value = 1.6 + 0.3 * math.sin(2 * math.pi * i / 480) + rng.gauss(0.0, 0.08)
    if wear_from is not None and i >= wear_from:
        r = min((i - wear_from) / 360, 1.0)
        value += 3.0 * r * r
    return value


def _first_drift(
    wear_from: int | None, capability: str = "VIBRATION", dtype: str = "MACHINE", **cfg: Any
) -> int | None:
    """The reading index of the first ``drift:`` alert (None: none in 36 h)."""
    stage = DetectionStage(
        DetectionConfig(warmup=DAY, **cfg),
        policy=AlertPolicy(quiet_period_ms=3_600_000, repeat_interval_ms=48 * 3_600_000),
    )
    rng = random.Random(5)
    for i in range(DAY + 12 * 60):
        stage.observe(SRC, _reading(i, _vibration(i, rng, wear_from), capability, dtype))
        for alert in stage.take().alerts:
            if alert["rule"].startswith("drift:"):
                return i
    return None


def test_wear_raises_drift_hours_before_the_limit() -> None:
    wear_from = DAY + 60
    found = _first_drift(wear_from)
    assert found is not None
    # the ramp reaches 7.1 mm/s (the WARNING limit) only at its end, 6 h in (and 1.6 + 3 < 7.1);
    # the drift is found while the wear adds less than 1 mm/s, over 2 h before the ramp ends
    assert found - wear_from < 208, found - wear_from  # r < 0.577: 3 r^2 < 1 mm/s


def test_a_repeating_daily_cycle_raises_no_drift() -> None:
    assert _first_drift(None) is None


def test_unlimited_and_generic_series_and_threshold_0_are_not_judged() -> None:
    wear_from = DAY + 60
    assert _first_drift(wear_from, capability="FLOW") is None  # no safety limit
    assert _first_drift(wear_from, dtype="GENERIC") is None  # replayed data: NAB
    assert _first_drift(wear_from, profile_drift_threshold=0.0) is None  # off


def test_state_checks_its_sign_and_config_names_the_field() -> None:
    st = ProfileDriftState(-1.0, 60_000, 3.5, 2, 4.0, 1.5)
    assert ProfileDriftState.from_state(st.to_state()) == st
    with pytest.raises(ValueError, match="sign"):
        ProfileDriftState.from_state({**st.to_state(), "sign": 0.5})
    with pytest.raises(ValueError, match="profile_drift_clip"):
        DetectionConfig(profile_drift_slack=2.0, profile_drift_clip=1.0)
