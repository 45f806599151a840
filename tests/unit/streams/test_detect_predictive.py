"""Time-to-limit on known ramps."""

from __future__ import annotations

import random

import pytest

from streams.detect import TimeToLimit, theil_sen

MIN = 60_000


def _ramp(noise: float, seed: int) -> TimeToLimit:
    """30 degC rising 2 degC per hour, one reading per minute, 2 wild outliers."""
    rng = random.Random(seed)
    ttl = TimeToLimit(limit=60.0, horizon_s=4 * 3_600.0, size=32, warmup=16)
    for i in range(120):
        x = 30.0 + 2.0 * i / 60 + rng.gauss(0.0, noise)
        if i in (100, 110):
            x = 500.0
        ttl.learn_one(x, i * MIN)
    return ttl


EXPECTED_S = (60.0 - (30.0 + 2.0 * 119 / 60)) / (2.0 / 3_600.0)  # 13.02 h from minute 119


def test_time_to_limit_exact_on_a_known_ramp_despite_outliers() -> None:
    assert _ramp(noise=0.0, seed=0).time_to_limit_s(119 * MIN) == pytest.approx(EXPECTED_S)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_time_to_limit_on_a_noisy_ramp(seed: int) -> None:
    ttl = _ramp(noise=0.05, seed=seed)
    eta = ttl.time_to_limit_s(119 * MIN)
    assert eta == pytest.approx(EXPECTED_S, rel=0.1)
    verdict = ttl.process_one(30.0 + 2.0 * 120 / 60, 120 * MIN)
    assert not verdict.is_anomaly  # 13 h away: outside the 4 h horizon


def test_crossing_inside_horizon_scores_above_one() -> None:
    ttl = TimeToLimit(limit=4.25, horizon_s=2 * 3_600.0, size=16, warmup=8)
    for i in range(16):
        ttl.learn_one(4.10 + 0.001 * i, i * MIN)  # 0.06 V/h: 4.115 V now, 2.25 h to go
    eta = ttl.time_to_limit_s(15 * MIN)
    assert eta == pytest.approx(0.135 / (0.001 / 60), rel=1e-6)
    ttl2 = TimeToLimit(limit=4.25, horizon_s=3 * 3_600.0, size=16, warmup=8)
    for i in range(16):
        ttl2.learn_one(4.10 + 0.001 * i, i * MIN)
    assert ttl2.process_one(4.116, 16 * MIN).is_anomaly


def test_no_crossing_when_moving_away_and_zero_when_past() -> None:
    below = TimeToLimit(limit=10.0, direction="below", size=8, warmup=2)
    for i in range(8):
        below.learn_one(20.0 + i, i * MIN)
    assert below.time_to_limit_s(7 * MIN) is None
    above = TimeToLimit(limit=10.0, size=8, warmup=2)
    for i in range(8):
        above.learn_one(20.0 - i, i * MIN)
    assert above.time_to_limit_s(7 * MIN) == 0.0


def test_falling_series_towards_lower_limit() -> None:
    ttl = TimeToLimit(limit=600.0, direction="below", size=16, warmup=4)
    for i in range(16):
        ttl.learn_one(830.0 - 1.0 * i, i * MIN)  # a slow leak: 1 kPa per minute
    assert ttl.time_to_limit_s(15 * MIN) == pytest.approx(215 * 60.0)


def test_theil_sen_requires_two_points_and_ignores_outliers() -> None:
    with pytest.raises(ValueError, match="at least 2 points"):
        theil_sen([0.0], [1.0])
    slope, intercept = theil_sen([0, 1, 2, 3, 4, 5, 6], [0, 1, 2, -50, 4, 5, 6])
    assert slope == 1.0
    assert intercept == 0.0


def test_out_of_order_readings_are_ignored() -> None:
    ttl = TimeToLimit(limit=100.0, size=8, warmup=2)
    for i in range(5):
        ttl.learn_one(float(i), i * MIN)
    ttl.learn_one(90.0, 2 * MIN)
    assert ttl.time_to_limit_s(4 * MIN) == pytest.approx(96 * 60.0)
