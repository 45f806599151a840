"""SeasonalZScore on seeded synthetic series: step, slow drift, quiet daily cycle."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest

from streams.detect import SeasonalZScore

DAY = 86_400_000
HOUR = 3_600_000
MIN = 60_000


def _flags(seed: int, extra: Callable[[int], float], days: float = 3.0) -> list[int]:
    """Event times flagged on a 1/min series: 20 + 5 sin(daily) + N(0, 0.3) + extra."""
    rng = random.Random(seed)
    det = SeasonalZScore(warmup=1_440)
    out = []
    for i in range(int(days * 1_440)):
        ts = i * MIN
        x = 20.0 + 5.0 * math.sin(2 * math.pi * ts / DAY) + rng.gauss(0.0, 0.3) + extra(ts)
        if det.process_one(x, ts).is_anomaly:
            out.append(ts)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_quiet_on_noisy_daily_cycle(seed: int) -> None:
    assert _flags(seed, lambda ts: 0.0) == []


@pytest.mark.parametrize("seed", [0, 1])
def test_flags_a_step_at_once(seed: int) -> None:
    onset = int(2.5 * DAY)
    flags = _flags(seed, lambda ts: 3.0 if ts >= onset else 0.0)
    assert flags, "a 10-sigma step must be flagged"
    assert onset <= flags[0] <= onset + 2 * MIN


@pytest.mark.parametrize("seed", [0, 1])
def test_flags_a_slow_drift_within_hours(seed: int) -> None:
    onset = int(2.2 * DAY)
    # 0.3 per hour = 1 noise sigma per hour; no single reading is extreme at first
    flags = _flags(seed, lambda ts: max(0.0, (ts - onset) / HOUR * 0.3))
    assert flags
    # defaults favour few false alerts (docs/detection.md): about 4 h for 1 sigma per hour
    assert onset < flags[0] <= onset + 5 * HOUR


def test_spike_does_not_drag_the_baseline() -> None:
    rng = random.Random(5)
    det = SeasonalZScore(warmup=200)
    for i in range(400):
        det.learn_one(10.0 + rng.gauss(0.0, 0.1), i * MIN)
    before = det.score_one(10.0, 400 * MIN)
    for i in range(400, 405):  # a burst of absurd values after warm-up
        assert det.process_one(1_000.0, i * MIN).is_anomaly
    after = det.score_one(10.0, 405 * MIN)
    # winsorised learning: a normal value stays normal after the burst
    assert after < det.threshold
    assert abs(after - before) < 3.0


def test_process_one_equals_score_then_learn_bit_for_bit() -> None:
    """The fused per-reading path (baseline and spread computed once) gives the scores and
    the state of scoring then learning separately."""
    rng = random.Random(3)
    fused = SeasonalZScore(warmup=300, accept_ms=6 * HOUR)
    split = SeasonalZScore(warmup=300, accept_ms=6 * HOUR)
    drifted = False
    for i in range(3 * 1_440):
        ts = i * MIN
        x = 20.0 + 5.0 * math.sin(2 * math.pi * ts / DAY) + rng.gauss(0.0, 0.3)
        x += 8.0 if i > 2 * 1_440 else 0.0  # a step: a drift latched, then accepted
        if i % 997 == 0:
            x = math.nan
        learn = i % 13 != 0
        got = fused.process_one(x, ts, learn=learn)
        score, warm = split.score_one(x, ts), split.is_warm
        if learn:
            split.learn_one(x, ts)
        assert got.warm == warm
        assert got.score == score or (math.isnan(score) and math.isnan(got.score))
        drifted = drifted or fused.drifting
        assert fused.to_state() == split.to_state()
    assert drifted
