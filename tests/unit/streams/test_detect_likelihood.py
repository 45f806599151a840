"""Anomaly likelihood: a sustained deviation is judged against the series' own scores."""

from __future__ import annotations

import doctest
import random
from typing import Any

import pytest

import streams.detect.likelihood
from streams.alerts import AlertPolicy
from streams.detect.likelihood import AnomalyLikelihood
from streams.detection import DetectionConfig, DetectionStage

MIN = 60_000
HOUR = 60 * MIN
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SRC = ("telemetry.readings", 0)


def test_doctests() -> None:
    assert doctest.testmod(streams.detect.likelihood).failed == 0


def _flags(lik: AnomalyLikelihood, scores: list[float], first: int = 0) -> list[bool]:
    return [lik.process_one(s, first + i).is_anomaly for i, s in enumerate(scores)]


def test_a_sustained_moderate_score_is_unlikely_on_a_quiet_series() -> None:
    rng = random.Random(3)
    lik = AnomalyLikelihood(warmup=100, short=10, threshold=4.0)
    noise = _flags(lik, [abs(rng.gauss(0, 1)) for _ in range(3000)])
    assert sum(noise) < 0.005 * len(noise)  # white noise: rarely (documented rate)
    # |z| of 3 is no outlier for a fixed threshold of 6, but ten of them in a row is
    flags = _flags(lik, [3.0] * 10, first=3000)
    assert any(flags)
    assert not flags[0]  # one reading is not enough: the average moves by a tenth


def test_a_series_with_heavy_tailed_scores_raises_its_own_bar() -> None:
    rng = random.Random(4)
    quiet = AnomalyLikelihood(warmup=100, short=5, threshold=4.0)
    bursty = AnomalyLikelihood(warmup=100, short=5, threshold=4.0)
    _flags(quiet, [abs(rng.gauss(0, 1)) for _ in range(3000)])
    # bursts of |z| around 4 every 100 readings are this series' normal
    _flags(bursty, [4.0 if i % 100 < 8 else abs(rng.gauss(0, 1)) for i in range(3000)])
    burst = [4.0] * 8
    assert any(_flags(quiet, burst, first=3000))
    assert not any(_flags(bursty, burst, first=3000))


def test_nothing_is_judged_during_warmup_and_nan_is_not_learned() -> None:
    lik = AnomalyLikelihood(warmup=50, short=5)
    assert not any(_flags(lik, [0.5] * 40 + [30.0] * 9))
    assert lik.n_learned == 49
    s = lik.process_one(float("nan"), 50)
    assert lik.n_learned == 49 and not s.is_anomaly


@pytest.mark.parametrize(("kwargs", "name"), [({"short": 0}, "short"), ({"history": 1}, "history")])
def test_bad_parameters_are_named(kwargs: dict[str, int], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        AnomalyLikelihood(**kwargs)


def test_config_scope_is_validated() -> None:
    with pytest.raises(ValueError, match="likelihood"):
        DetectionConfig(likelihood="some")


# -- in the detection stage --------------------------------------------------------------
def _reading(i: int, value: float, capability: str) -> dict[str, Any]:
    ts = START + i * MIN
    return {
        "reading_id": f"d1/{capability}@{ts}",
        "device_id": "d1",
        "device_type": "UNKNOWN",
        "sensor_id": f"d1/{capability}",
        "capability": capability,
        "value": value,
        "timestamp": ts,
        "sequence": i,
        "quality": "GOOD",
        "tenant_id": "default",
    }


def _shifted(capability: str, scope: str) -> tuple[DetectionStage, list[dict[str, Any]]]:
    """Two days of noise around 10, then one hour 3.5 standard deviations higher."""
    stage = DetectionStage(
        DetectionConfig(warmup=600, likelihood=scope, window=False),
        policy=AlertPolicy(quiet_period_ms=HOUR, repeat_interval_ms=48 * HOUR),
    )
    rng = random.Random(5)
    values = [10.0 + rng.gauss(0, 1) for _ in range(2 * 24 * 60)]
    values += [13.5 + rng.gauss(0, 0.3) for _ in range(60)]
    sent = []
    for i, v in enumerate(values):
        stage.observe(SRC, _reading(i, v, capability))
        if i % 50 == 0:
            stage.tick([SRC])
        sent += stage.take().alerts
    return stage, sent


def _in_shift(alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts opened during the shifted hour."""
    shift = START + 2 * 24 * HOUR
    return [a for a in alerts if a["state"] == "FIRING" and a["first_seen"] >= shift]


def test_a_generic_series_alerts_on_a_sustained_moderate_shift() -> None:
    _, sent = _shifted("GENERIC", "generic")
    firing = _in_shift(sent)
    assert len(firing) == 1
    assert "score:likelihood:GENERIC" in firing[0]["attributes"]
    # the same shift with the likelihood off is below the fixed |z| threshold of 6
    assert not _in_shift(_shifted("GENERIC", "off")[1])
    # scope "generic" leaves a known capability to the fixed threshold and persistence
    assert not _in_shift(_shifted("PRESSURE", "generic")[1])
    assert _in_shift(_shifted("PRESSURE", "all")[1])


def test_a_false_positive_raises_the_likelihood_threshold() -> None:
    stage, sent = _shifted("GENERIC", "generic")
    alert = _in_shift(sent)[0]
    score = float(alert["attributes"]["score:likelihood:GENERIC"])
    assert stage.feedback(alert["alert_id"], "false_positive", alert["last_seen"])
    ser = next(iter(stage.devices[("default", "d1")].series.values()))
    lik = ser.signals["likelihood"]
    assert lik.threshold is not None and lik.threshold > max(score, 4.0)
    # the state, adapted threshold included, survives a checkpoint round trip
    records = [(k, v) for _, k, v in stage.checkpoint()]
    fresh = DetectionStage(DetectionConfig(warmup=600, window=False))
    fresh.load_checkpoint(records)
    restored = next(iter(fresh.devices[("default", "d1")].series.values()))
    assert restored.signals["likelihood"].threshold == lik.threshold
    assert restored.signals["likelihood"].model.n_learned == lik.model.n_learned
