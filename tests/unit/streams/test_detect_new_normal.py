"""A level shift that persists becomes the series' new normal (``accept_ms``), and a slowly
sampled series' alert is not "quiet" after one missing sample (``quiet_intervals``)."""

from __future__ import annotations

import random

from streams.alerts import AlertPolicy
from streams.detect.univariate import SeasonalZScore
from streams.detection import DetectionConfig, DetectionStage

MIN = 60_000
HOUR = 60 * MIN


def _shifted(det: SeasonalZScore, hours: float, *, start: int = 0, seed: int = 1) -> list[bool]:
    """Feed one reading a minute: level 20 for two days, then 30 (a new normal); the flags
    of the readings after the shift."""
    rng = random.Random(seed)
    flags = []
    for i in range(start, start + int(hours * 60)):
        level = 20.0 if i < 2 * 1_440 else 30.0
        s = det.process_one(level + rng.gauss(0.0, 0.2), i * MIN)
        if i >= 2 * 1_440:
            flags.append(s.is_anomaly)
    return flags


def test_a_persisting_level_shift_is_alerted_then_learned_as_the_new_normal() -> None:
    det = SeasonalZScore(warmup=300, accept_ms=6 * HOUR)
    flags = _shifted(det, 2 * 24 + 12)  # two days, then 12 hours at the new level
    assert any(flags[:60]), "the shift itself is an anomaly"
    assert not any(flags[-4 * 60 :]), "after 6 h it is the series' normal"


def test_without_the_rule_the_shift_is_flagged_for_as_long_as_it_lasts() -> None:
    det = SeasonalZScore(warmup=300, accept_ms=0)
    flags = _shifted(det, 2 * 24 + 12)
    assert sum(flags[-4 * 60 :]) > 200


def _reading(i: int, ts: int, value: float) -> dict[str, object]:
    return {
        "reading_id": f"d/generic@{ts}",
        "device_id": "d",
        "device_type": "UNKNOWN",
        "sensor_id": "d/generic",
        "capability": "GENERIC",
        "value": value,
        "unit": "",
        "timestamp": ts,
        "sequence": i,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }


def _alerts_of_hourly_anomaly(quiet_intervals: int) -> list[dict[str, object]]:
    """An hourly series whose anomaly lasts 12 hours: the FIRING alerts it opens."""
    stage = DetectionStage(
        DetectionConfig(warmup=200, likelihood="off", quiet_intervals=quiet_intervals),
        policy=AlertPolicy(quiet_period_ms=HOUR, repeat_interval_ms=100 * HOUR),
    )
    rng = random.Random(3)
    firing = []
    for i in range(600):
        ts = i * HOUR
        value = 10.0 + rng.gauss(0.0, 0.3) + (8.0 if 500 <= i < 512 else 0.0)
        stage.observe(("t", 0), _reading(i, ts, value))
        stage.tick([("t", 0)])
        firing += [a for a in stage.take().alerts if a["state"] == "FIRING"]
    return firing


def test_an_hourly_series_anomaly_is_one_alert_when_quiet_counts_in_intervals() -> None:
    assert len({a["alert_id"] for a in _alerts_of_hourly_anomaly(12)}) == 1
    # with the quiet period alone (1 h = one sample) the same anomaly opens alert after alert
    assert len({a["alert_id"] for a in _alerts_of_hourly_anomaly(0)}) > 1
