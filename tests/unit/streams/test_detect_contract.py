"""One contract suite run over every detector of ``streams.detect`` (River ``checks/``
style); the signals' suite is ``test_detect_signal_contract.py``."""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pickle
import pkgutil
import random
from collections.abc import Callable
from typing import Any

import pytest

import streams.detect
from streams.detect import (
    Detector,
    SeasonalZScore,
    TimeToLimit,
    WindowHST,
    WindowMahalanobis,
)
from streams.detect.likelihood import AnomalyLikelihood
from streams.detect.multivariate import WindowHSTResiduals

MIN = 60_000


def _scalar(rng: random.Random, i: int) -> float:
    return 20.0 + 3.0 * math.sin(2 * math.pi * i / 1440) + rng.gauss(0.0, 0.3)


def _window(rng: random.Random, i: int) -> dict[str, float]:
    load = rng.gauss(0.0, 1.0)
    return {"T.mean": 50.0 + 3.0 * load + rng.gauss(0, 0.5), "V.mean": 2.0 + 0.4 * load}


def _magnitude(rng: random.Random, i: int) -> float:
    return abs(rng.gauss(0.0, 1.0))


def _bad_scalars() -> list[Any]:
    return [math.nan, math.inf, -math.inf]


def _bad_windows() -> list[Any]:
    return [{"T.mean": math.nan, "V.mean": 1.0}, {"T.mean": math.inf, "V.mean": 1.0}, {}]


CASES: dict[str, tuple[Callable[[], Detector[Any]], Callable[..., Any], list[Any], Any]] = {
    "seasonal_zscore": (
        lambda: SeasonalZScore(warmup=100),
        _scalar,
        _bad_scalars(),
        1e6,
    ),
    "time_to_limit": (
        lambda: TimeToLimit(limit=1e3, warmup=20),
        _scalar,
        _bad_scalars(),
        999.0,
    ),
    "window_hst": (
        lambda: WindowHST(warmup=100, window_size=50, n_trees=5, height=6),
        _window,
        _bad_windows(),
        {"T.mean": 500.0, "V.mean": -50.0},
    ),
    "anomaly_likelihood": (
        lambda: AnomalyLikelihood(warmup=100, short=5, history=150),
        _magnitude,
        _bad_scalars(),
        1e6,
    ),
    "window_hst_residuals": (
        lambda: WindowHSTResiduals(
            WindowHST(warmup=100, window_size=50, n_trees=5, height=6),
            WindowMahalanobis(warmup=100),
        ),
        _window,
        _bad_windows(),
        {"T.mean": 500.0, "V.mean": -50.0},
    ),
    "window_mahalanobis": (
        lambda: WindowMahalanobis(warmup=100),
        _window,
        _bad_windows(),
        {"T.mean": 500.0, "V.mean": -50.0},
    ),
}


def _detector_classes() -> set[type[Detector[Any]]]:
    """Every concrete detector class defined in a module of ``streams.detect``."""
    found: set[type[Detector[Any]]] = set()
    for info in pkgutil.iter_modules(streams.detect.__path__, "streams.detect."):
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Detector) and not inspect.isabstract(obj):
                found.add(obj)
    return found


def test_every_detector_of_streams_detect_has_a_contract_case() -> None:
    covered = {type(make()) for make, *_ in CASES.values()}
    missing = sorted(c.__qualname__ for c in _detector_classes() - covered)
    assert not missing, f"add a case to CASES for {missing}"


def test_scoring_is_deterministic(case: Any) -> None:
    make, gen, _, _ = case
    a, b = make(), make()
    _feed(a, gen, 0, 300, seed=1)
    _feed(b, gen, 0, 300, seed=1)
    rng = random.Random(4)
    xs = [gen(rng, i) for i in range(300, 320)]
    assert [a.score_one(x, 0) for x in xs] == [b.score_one(x, 0) for x in xs]


def test_an_extreme_input_scores_above_the_threshold_once_warm(case: Any) -> None:
    make, gen, _, extreme = case
    det = make()
    _feed(det, gen, 0, 300, seed=1)
    assert det.is_warm
    if isinstance(det, TimeToLimit):  # it judges the trend: learn a climb to the limit
        for i in range(300, 330):
            det.learn_one(20.0 + (i - 300) * 30.0, i * MIN)
    verdict = det.process_one(extreme, 300 * MIN, learn=False)
    assert verdict.score >= det.threshold, verdict
    assert verdict.is_anomaly


def _feed(det: Detector[Any], gen: Callable[..., Any], start: int, n: int, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(start, start + n):
        det.learn_one(gen(rng, i), i * MIN)


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> Any:
    return CASES[request.param]


def test_pickle_round_trip_continues_identically(case: Any) -> None:
    make, gen, _, _ = case
    det = make()
    _feed(det, gen, 0, 300, seed=1)
    restored = pickle.loads(pickle.dumps(det))
    assert restored.n_learned == det.n_learned == 300
    assert restored.is_warm
    _feed(det, gen, 300, 50, seed=2)
    _feed(restored, gen, 300, 50, seed=2)
    rng = random.Random(3)
    for i in range(350, 360):
        x = gen(rng, i)
        assert restored.score_one(x, i * MIN) == pytest.approx(det.score_one(x, i * MIN))


_NOT_CHECKPOINTED = {WindowHST, WindowHSTResiduals}
"""Their HalfSpaceTrees warm up again after a restore (River objects that only pickle)."""


def _through_json(det: Detector[Any]) -> Detector[Any]:
    """``det`` as the changelog carries it: plain state, JSON text, and back."""
    text = json.dumps(det.to_state())
    return type(det).from_state(json.loads(text))


def test_state_round_trip_continues_identically(case: Any) -> None:
    make, gen, _, _ = case
    det = make()
    _feed(det, gen, 0, 300, seed=1)
    restored = _through_json(det)
    assert type(restored) is type(det)
    if type(det) in _NOT_CHECKPOINTED:
        assert restored.n_learned == 0 and not restored.is_warm  # warms up again
        _feed(restored, gen, 300, restored.warmup, seed=2)
        assert restored.is_warm
        return
    assert restored.n_learned == det.n_learned == 300
    assert restored.to_state() == det.to_state()
    _feed(det, gen, 300, 50, seed=2)
    _feed(restored, gen, 300, 50, seed=2)
    rng = random.Random(3)
    for i in range(350, 360):
        x = gen(rng, i)
        assert restored.score_one(x, i * MIN) == det.score_one(x, i * MIN)  # exactly
    assert restored.to_state() == det.to_state()


def test_the_residual_model_beside_hst_continues_identically() -> None:
    make, gen, _, _ = CASES["window_hst_residuals"]
    det = make()
    _feed(det, gen, 0, 300, seed=1)
    restored = _through_json(det)
    assert isinstance(det, WindowHSTResiduals) and isinstance(restored, WindowHSTResiduals)
    assert restored.residual_model.to_state() == det.residual_model.to_state()


def test_a_state_with_a_missing_field_or_wrong_type_is_refused(case: Any) -> None:
    make, gen, _, _ = case
    det = make()
    _feed(det, gen, 0, 50, seed=1)
    state = det.to_state()
    for key in state:
        broken = {k: v for k, v in state.items() if k != key}
        with pytest.raises(ValueError, match=key):
            type(det).from_state(broken)
    for key in state:
        with pytest.raises(ValueError, match=key):
            type(det).from_state({**state, key: [["not", "a", "value"]]})


def test_state_size_does_not_grow_with_readings(case: Any) -> None:
    make, gen, _, _ = case
    det = make()
    _feed(det, gen, 0, 400, seed=1)
    size_small = len(pickle.dumps(det))
    _feed(det, gen, 400, 2_000, seed=2)
    size_large = len(pickle.dumps(det))
    assert size_large <= size_small * 1.1 + 64


def test_bad_inputs_neither_learned_nor_poison_state(case: Any) -> None:
    make, gen, bad, _ = case
    det = make()
    _feed(det, gen, 0, 200, seed=1)
    before = pickle.dumps(det)
    for x in bad:
        assert det.learn_one(x, 200 * MIN) is False
        assert math.isnan(det.score_one(x, 200 * MIN))
        verdict = det.process_one(x, 200 * MIN)
        assert verdict.is_anomaly is False
    assert pickle.dumps(det) == before


def test_suspect_reading_scored_but_not_learned(case: Any) -> None:
    make, gen, _, extreme = case
    det = make()
    _feed(det, gen, 0, 200, seed=1)
    before = pickle.dumps(det)
    det.process_one(extreme, 200 * MIN, learn=False)
    assert pickle.dumps(det) == before


def test_no_alert_before_warm_up(case: Any) -> None:
    make, gen, _, extreme = case
    det = make()
    _feed(det, gen, 0, det.warmup - 1, seed=1)
    assert not det.is_warm
    verdict = det.process_one(extreme, det.warmup * MIN)
    assert verdict.warm is False
    assert verdict.is_anomaly is False
    assert det.is_warm  # the extreme input was learned and completed the warm-up


@pytest.mark.parametrize("kwargs", [{"warmup": -1}, {"threshold": 0.0}, {"threshold": math.nan}])
def test_invalid_parameters_are_refused_with_the_name(kwargs: dict[str, float]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        SeasonalZScore(**kwargs)  # type: ignore[arg-type]


def test_a_seasonal_state_from_before_the_new_normal_rule_still_loads() -> None:
    """Checkpoints written before ``accept_ms`` existed hold none of its keys: they load,
    with the rule off (a state holding only some of them is refused, as any broken one)."""
    det = SeasonalZScore(warmup=10, accept_ms=3_600_000)
    for i in range(40):
        det.process_one(20.0 + 0.1 * (i % 3), i * 60_000)
    old = {
        k: v for k, v in det.to_state().items() if k not in ("accept_ms", "drift_since", "shift")
    }
    restored = SeasonalZScore.from_state(old)
    assert restored.accept_ms == 0
    assert restored.n_learned == 40
    assert restored.z(25.0, 40 * 60_000) == det.z(25.0, 40 * 60_000)
