"""``streams.detect.moments`` computes what River's statistics compute, bit for bit (the
seasonal detector moved from River's to these; its results must not change)."""

from __future__ import annotations

import json
import random

import pytest
from river import drift, stats

from streams.detect.moments import EWMean, EWVar, PageHinkley


def _values(seed: int, n: int) -> list[float]:
    rng = random.Random(seed)
    return [
        rng.choice([rng.gauss(0, 1) * 10 ** rng.randint(-3, 3), 0.0, float(rng.randint(-5, 5))])
        for _ in range(n)
    ]


@pytest.mark.parametrize("fading", [0.5, 0.05, 0.01, 0.002])
def test_ew_mean_and_variance_equal_rivers_exactly(fading: float) -> None:
    ours_m, ours_v = EWMean(fading), EWVar(fading)
    river_m, river_v = stats.EWMean(fading), stats.EWVar(fading)
    for i, x in enumerate(_values(1, 20_000)):
        ours_m.update(x)
        ours_v.update(x)
        river_m.update(x)
        river_v.update(x)
        assert (ours_m.get(), ours_v.get()) == (river_m.get(), river_v.get()), i
        if i == 10_000:  # through a checkpoint halfway
            ours_m = EWMean.from_state(json.loads(json.dumps(ours_m.to_state())))
            ours_v = EWVar.from_state(json.loads(json.dumps(ours_v.to_state())))


def test_page_hinkley_equals_rivers_exactly_and_survives_a_checkpoint() -> None:
    ours = PageHinkley(min_instances=30, delta=1.0, threshold=20.0)
    theirs = drift.PageHinkley(min_instances=30, delta=1.0, threshold=20.0, mode="both")
    rng = random.Random(2)
    detected = 0
    for i in range(20_000):
        x = max(-4.0, min(4.0, rng.gauss(2.0 if (i // 2_000) % 2 else 0.0, 1.0)))
        ours.update(x)
        theirs.update(x)
        assert ours.drift_detected == theirs.drift_detected, i
        detected += ours.drift_detected
        if i == 7_777:
            ours = PageHinkley.from_state(json.loads(json.dumps(ours.to_state())))
    assert detected >= 5  # the comparison covered drifts and the resets after them
