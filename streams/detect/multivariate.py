"""Per-window multivariate detector over one device's window aggregates.

A pattern across signals (bearing temperature and vibration rising together) can be
anomalous while no single signal is extreme. Each window's aggregates become a feature
vector (``window_features``); features are standardised by running statistics, squashed
into ``[0, 1]`` and scored by River's ``HalfSpaceTrees`` (seeded). The feature set is fixed
by the first window learned, so state does not grow with new names.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from river import anomaly, stats

from streams.detect.base import Detector, is_finite_features

__all__ = ["WindowHST", "WindowMahalanobis", "window_features"]

_STATS = ("mean", "std")


def window_features(aggregates: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """Feature vector of one device's window: ``{capability}.{mean,std}`` per aggregate.

    Non-finite statistics are left out (the detector refuses incomplete vectors).

    >>> window_features([{"capability": "VIBRATION", "mean": 2.0, "std": 0.5}])
    {'VIBRATION.mean': 2.0, 'VIBRATION.std': 0.5}
    """
    out: dict[str, float] = {}
    for agg in aggregates:
        for stat in _STATS:
            value = agg.get(stat)
            if isinstance(value, float | int) and math.isfinite(value):
                out[f"{agg['capability']}.{stat}"] = float(value)
    return out


class WindowHST(Detector[dict[str, float]]):
    """HalfSpaceTrees on standardised, squashed window features (score in ``[0, 1]``).

    ``span`` is how many standard deviations either side of the mean map onto ``[0, 1]``.
    """

    name = "window_hst"

    def __init__(
        self,
        *,
        warmup: int = 200,
        threshold: float = 0.8,
        n_trees: int = 25,
        height: int = 8,
        window_size: int = 100,
        span: float = 4.0,
        seed: int = 42,
    ) -> None:
        super().__init__(warmup=warmup, threshold=threshold)
        self.span = span
        self.features: tuple[str, ...] = ()
        self._moments: dict[str, stats.Var] = {}
        self._hst = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )

    def _accepts(self, x: dict[str, float]) -> bool:
        if not is_finite_features(x):
            return False
        return not self.features or all(name in x for name in self.features)

    def _squash(self, x: dict[str, float]) -> dict[str, float]:
        out = {}
        for name in self.features:
            var = self._moments[name]
            std = math.sqrt(var.get()) if var.n > 1 else 0.0
            z = (x[name] - var.mean.get()) / std if std > 0 else 0.0
            out[name] = min(1.0, max(0.0, 0.5 + z / (2.0 * self.span)))
        return out

    def _score(self, x: dict[str, float], ts_ms: int) -> float:
        if not self.features:
            return 0.0
        return float(self._hst.score_one(self._squash(x)))

    def _learn(self, x: dict[str, float], ts_ms: int) -> None:
        if not self.features:
            self.features = tuple(sorted(x))
            self._moments = {name: stats.Var() for name in self.features}
        squashed = self._squash(x)
        for name in self.features:
            self._moments[name].update(x[name])
        self._hst.learn_one(squashed)


class WindowMahalanobis(Detector[dict[str, float]]):
    """Mahalanobis distance under an exponentially weighted mean and covariance.

    Catches a broken correlation (temperature up while vibration is down, or both up more
    than load explains) that ``HalfSpaceTrees`` on few features separates poorly: on
    correlated synthetic windows its normal scores overlap the anomalous ones (see
    ``tests/unit/streams/test_detect_multivariate.py``). The score is the distance in
    standard deviations; state is ``d`` means and a ``d x d`` covariance (``d`` fixed by the
    first window learned). Once warm, learning is winsorised at ``clip`` distances.
    """

    name = "window_mahalanobis"

    def __init__(
        self,
        *,
        warmup: int = 100,
        threshold: float = 6.0,
        fading: float = 0.01,
        clip: float = 4.0,
        ridge: float = 1e-6,
    ) -> None:
        super().__init__(warmup=warmup, threshold=threshold)
        if not 0.0 < fading < 1.0:
            msg = f"fading must be in (0, 1), got {fading!r}"
            raise ValueError(msg)
        self.fading = fading
        self.clip = clip
        self.ridge = ridge
        self.features: tuple[str, ...] = ()
        self._mean: list[float] = []
        self._cov: list[list[float]] = []

    def _accepts(self, x: dict[str, float]) -> bool:
        if not is_finite_features(x):
            return False
        return not self.features or all(name in x for name in self.features)

    def _distance(self, x: dict[str, float]) -> tuple[float, list[float]]:
        diff = np.array([x[n] for n in self.features]) - np.array(self._mean)
        cov = np.array(self._cov)
        scale = float(np.trace(cov)) / len(self.features) if len(self.features) else 0.0
        cov = cov + np.eye(len(self.features)) * (self.ridge * scale + 1e-12)
        d2 = float(diff @ np.linalg.solve(cov, diff))
        return math.sqrt(max(d2, 0.0)), [float(v) for v in diff]

    def _score(self, x: dict[str, float], ts_ms: int) -> float:
        if self.n_learned < 2:
            return 0.0
        return self._distance(x)[0]

    def _learn(self, x: dict[str, float], ts_ms: int) -> None:
        if not self.features:
            self.features = tuple(sorted(x))
            self._mean = [x[n] for n in self.features]
            self._cov = [[0.0] * len(self.features) for _ in self.features]
            return
        n = len(self.features)
        if self.n_learned < 2:
            diff = [x[f] - m for f, m in zip(self.features, self._mean, strict=True)]
        else:
            dist, diff = self._distance(x)
            if self.is_warm and dist > self.clip:
                diff = [d * self.clip / dist for d in diff]
        # a fixed rate from the start would let the first windows dominate; use 1/n until
        # it falls below ``fading``
        a = max(self.fading, 1.0 / (self.n_learned + 1))
        self._mean = [m + a * d for m, d in zip(self._mean, diff, strict=True)]
        for i in range(n):
            row = self._cov[i]
            for j in range(n):
                row[j] = (1.0 - a) * (row[j] + a * diff[i] * diff[j])
