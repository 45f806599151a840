"""Window detectors: a broken correlation between signals is caught."""

from __future__ import annotations

import random

from streams.detect import WindowHST, WindowMahalanobis, window_features


def _normal(rng: random.Random) -> dict[str, float]:
    load = rng.gauss(0.0, 1.0)
    return {
        "BEARING_TEMPERATURE.mean": 50.0 + 3.0 * load + rng.gauss(0.0, 0.5),
        "VIBRATION.mean": 2.0 + 0.4 * load + rng.gauss(0.0, 0.07),
    }


# each value is within 2 sigma of its own mean: only the combination is abnormal
BROKEN = {"BEARING_TEMPERATURE.mean": 56.0, "VIBRATION.mean": 1.2}


def test_mahalanobis_flags_broken_correlation_and_stays_quiet_on_normal() -> None:
    rng = random.Random(3)
    det = WindowMahalanobis(warmup=200)
    for i in range(1_000):
        det.learn_one(_normal(rng), i)
    normal_flags = sum(det.process_one(_normal(rng), 1_000 + i).is_anomaly for i in range(500))
    assert normal_flags == 0
    verdict = det.process_one(BROKEN, 2_000)
    assert verdict.is_anomaly
    assert verdict.score > 2 * det.threshold


def test_hst_ranks_broken_correlation_above_typical_windows() -> None:
    rng = random.Random(3)
    det = WindowHST(warmup=200, seed=7)
    for i in range(1_000):
        det.learn_one(_normal(rng), i)
    scores = sorted(det.score_one(_normal(rng), 0) for _ in range(201))
    assert det.score_one(BROKEN, 0) > scores[100]


def test_window_features_skip_non_finite_statistics() -> None:
    aggs = [
        {"capability": "VIBRATION", "mean": 2.0, "std": float("nan")},
        {"capability": "BEARING_TEMPERATURE", "mean": 50.0, "std": 0.4},
    ]
    assert window_features(aggs) == {
        "VIBRATION.mean": 2.0,
        "BEARING_TEMPERATURE.mean": 50.0,
        "BEARING_TEMPERATURE.std": 0.4,
    }


def test_missing_feature_is_refused_not_learned() -> None:
    rng = random.Random(1)
    det = WindowMahalanobis(warmup=10)
    for i in range(50):
        det.learn_one(_normal(rng), i)
    assert det.learn_one({"VIBRATION.mean": 2.0}, 50) is False
    assert det.n_learned == 50
