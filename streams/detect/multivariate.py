"""Per-window multivariate detector over one device's window aggregates.

A pattern across signals (bearing temperature and vibration rising together) can be
anomalous while no single signal is extreme. Each window's aggregates become a feature
vector (``window_features``); features are standardised by running statistics, squashed
into ``[0, 1]`` and scored by River's ``HalfSpaceTrees`` (seeded). The feature set is fixed
by the first window learned, so state does not grow with new names.

Checkpoints: :class:`WindowMahalanobis` saves its whole state (means, covariance and added
directions as arrays). ``HalfSpaceTrees``' trees are River objects that only pickle, so a
:class:`WindowHST` saves its parameters only and comes back empty: after a restart it warms
up again (``window_warmup`` windows), while the Mahalanobis model beside it
(:class:`WindowHSTResiduals`) continues.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from streams.detect.base import Detector, is_finite_features
from streams.detect.state import (
    State,
    StateError,
    array_from_state,
    array_to_state,
    read_bool,
    read_dict,
    read_float,
    read_int,
    read_opt_dict,
    read_opt_float,
    read_strs,
)

if TYPE_CHECKING:
    from river import stats

__all__ = ["WindowHST", "WindowHSTResiduals", "WindowMahalanobis", "window_features"]

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
        self.params = {"n_trees": n_trees, "height": height, "window_size": window_size}
        self.seed = seed
        self.features: tuple[str, ...] = ()
        self._moments: dict[str, stats.Var] = {}
        # river (with scipy, scikit-learn and pandas under it: ~150 MiB and ~2 s) is
        # imported by the model that uses it, not by every worker
        from river import anomaly

        self._hst = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )

    def to_state(self) -> State:
        """The parameters only: the trees are not checkpointed (see the module doc)."""
        return {
            "warmup": self.warmup,
            "threshold": self.threshold,
            "span": self.span,
            "seed": self.seed,
            **self.params,
        }

    @classmethod
    def from_state(cls, d: State) -> WindowHST:
        """An empty model with the saved parameters: it warms up again."""
        return cls(
            warmup=read_int(d, "warmup"),
            threshold=read_float(d, "threshold"),
            n_trees=read_int(d, "n_trees"),
            height=read_int(d, "height"),
            window_size=read_int(d, "window_size"),
            span=read_float(d, "span"),
            seed=read_int(d, "seed"),
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
            from river import stats

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
    ``tests/unit/streams/test_detect_multivariate.py``). State is ``d`` means and a ``d x d``
    covariance (numpy arrays; ``d`` fixed by the first window learned). Once warm, learning
    is winsorised: a window scoring above ``clip`` moves the statistics as one at ``clip``,
    and a window scoring ``slow_above`` or more (e.g. the threshold) is learned at a tenth of
    the rate: a lasting incident is not learned as normal within hours, a lasting change of
    regime is, within days.

    The score is the distance in standard deviations, or, with ``normalize``, the distance
    turned into a standard-normal deviate (Wilson-Hilferty cube root of ``d^2 / d``): a
    healthy window scores about ``N(0, 1)`` whatever the number of features, so one
    threshold serves a 4-sensor hub and a 30-sensor truck. ``shrink`` adds that share of
    each feature's own variance to the diagonal before inverting (a covariance estimated
    from ~``1 / fading`` windows over many features is otherwise near singular).

    With ``center=False`` the mean is fixed at 0 and the covariance is the second moment
    around it: for features that are residuals from a baseline (0 when healthy by
    construction) a learned mean adds only lag, and an anomaly would pull it along.

    :meth:`residuals` gives, per feature, its standardised residual *given the others*
    (``(P x)_i / sqrt(P_ii)`` with ``P`` the inverse covariance): the share of a window's
    distance that one signal explains, e.g. one tyre losing pressure while its siblings do
    not.

    ``given`` names *operating-state* features (a battery pack's charge current, set by the
    charger and the state of charge): they are learned with the others, so what they
    explain (cells warming while charging) is explained, but they are not judged. The score
    is then the distance of the other features *given* them (``d^2`` minus the distance of
    the given features alone, the Schur complement; normalised over the judged features
    only): a charge that starts or stops at another time than yesterday is not an anomaly,
    a cell out of line with the current is.
    """

    name = "window_mahalanobis"
    given: tuple[str, ...] = ()  # class defaults: states pickled before these existed
    _extra: np.ndarray | None = None  # directions added by ``add_direction`` (rows)

    def __init__(
        self,
        *,
        warmup: int = 100,
        threshold: float = 6.0,
        fading: float = 0.01,
        clip: float = 4.0,
        ridge: float = 1e-6,
        shrink: float = 0.0,
        normalize: bool = False,
        center: bool = True,
        slow_above: float | None = None,
        given: Iterable[str] = (),
    ) -> None:
        super().__init__(warmup=warmup, threshold=threshold)
        if not 0.0 < fading < 1.0:
            msg = f"fading must be in (0, 1), got {fading!r}"
            raise ValueError(msg)
        if not 0.0 <= shrink < 1.0:
            msg = f"shrink must be in [0, 1), got {shrink!r}"
            raise ValueError(msg)
        self.fading = fading
        self.clip = clip
        self.ridge = ridge
        self.shrink = shrink
        self.normalize = normalize
        self.center = center
        self.slow_above = slow_above
        self.given = tuple(sorted(set(given)))
        self.features: tuple[str, ...] = ()
        self._mean = np.zeros(0)
        self._cov = np.zeros((0, 0))

    def to_state(self) -> State:
        return {
            "warmup": self.warmup,
            "threshold": self.threshold,
            "fading": self.fading,
            "clip": self.clip,
            "ridge": self.ridge,
            "shrink": self.shrink,
            "normalize": self.normalize,
            "center": self.center,
            "slow_above": self.slow_above,
            "given": list(self.given),
            "features": list(self.features),
            "n_learned": self.n_learned,
            "mean": array_to_state(self._mean),
            "cov": array_to_state(self._cov),
            "extra": None if self._extra is None else array_to_state(self._extra),
        }

    @classmethod
    def from_state(cls, d: State) -> WindowMahalanobis:
        new = cls(
            warmup=read_int(d, "warmup"),
            threshold=read_float(d, "threshold"),
            fading=read_float(d, "fading"),
            clip=read_float(d, "clip"),
            ridge=read_float(d, "ridge"),
            shrink=read_float(d, "shrink"),
            normalize=read_bool(d, "normalize"),
            center=read_bool(d, "center"),
            slow_above=read_opt_float(d, "slow_above"),
        )
        new.given = read_strs(d, "given")
        features = read_strs(d, "features")
        if len(set(features)) != len(features):
            msg = f"features: expected distinct names, got {list(features)!r:.60}"
            raise StateError(msg)
        n = len(features)
        new.features = features
        new._mean = array_from_state(read_dict(d, "mean"), "mean", (n,))
        new._cov = array_from_state(read_dict(d, "cov"), "cov", (n, n))
        extra = read_opt_dict(d, "extra")
        if extra is not None:
            new._extra = array_from_state(extra, "extra", (-1, n))
        return new._learned(d)

    def _accepts(self, x: dict[str, float]) -> bool:
        if not is_finite_features(x):
            return False
        return not self.features or all(name in x for name in self.features)

    def _regularized(self) -> np.ndarray:
        cov = self._cov
        d = len(self.features)
        scale = float(np.trace(cov)) / d if d else 0.0
        reg = cov + np.diag(np.diag(cov) * self.shrink + self.ridge * scale + 1e-12)
        if self._extra is not None:
            reg = reg + self._extra.T @ self._extra
        return np.asarray(reg)

    def _precision(self) -> np.ndarray:
        return np.asarray(np.linalg.inv(self._regularized()))

    def _given_index(self) -> list[int]:
        return [i for i, name in enumerate(self.features) if name in self.given]

    def _judged(self) -> int:
        """The number of features judged (not ``given``)."""
        return len(self.features) - len(self._given_index())

    def _d2(self, diff: np.ndarray, px: np.ndarray) -> float:
        """The squared distance of the judged features given the ``given`` ones
        (``px`` = precision @ diff)."""
        d2 = float(diff @ px)
        idx = self._given_index()
        if idx:
            sub = self._regularized()[np.ix_(idx, idx)]
            ds = diff[idx]
            d2 -= float(ds @ np.linalg.solve(sub, ds))
        return max(d2, 0.0)

    def _diff(self, x: dict[str, float]) -> np.ndarray:
        return np.fromiter((x[n] for n in self.features), float, len(self.features)) - self._mean

    def _scale_score(self, d2: float) -> float:
        if not self.normalize:
            return math.sqrt(max(d2, 0.0))
        d = self._judged()
        if d <= 0:
            return 0.0
        c = 2.0 / (9.0 * d)
        return ((max(d2, 0.0) / d) ** (1.0 / 3.0) - (1.0 - c)) / math.sqrt(c)

    def _score(self, x: dict[str, float], ts_ms: int) -> float:
        if self.n_learned < 2:
            return 0.0
        diff = self._diff(x)
        return self._scale_score(self._d2(diff, self._precision() @ diff))

    def score_and_residuals(self, x: dict[str, float]) -> tuple[float, dict[str, float]]:
        """The score of ``x`` and each feature's standardised residual given the others.

        Both 0 before two windows were learned; ``(nan, {})`` for an input not accepted.
        """
        if not self._accepts(x):
            return math.nan, {}
        if self.n_learned < 2:
            return 0.0, dict.fromkeys(self.features, 0.0)
        diff = self._diff(x)
        prec = self._precision()
        px = prec @ diff
        res = px / np.sqrt(np.clip(np.diag(prec), 1e-300, None))
        score = self._scale_score(self._d2(diff, px))
        return score, dict(zip(self.features, res.tolist(), strict=True))

    def add_direction(self, offset: Mapping[str, float]) -> None:
        """Add ``offset`` (a feature vector) to the covariance as a direction of normal
        variation (``C + o o^T``): windows shifted along it score as usual, a feature moving
        against the others does not. It is kept apart from the learned covariance (the
        ``shrink`` of the diagonal does not grow with it) and fades at the learning rate,
        like a learned window. Missing features count 0."""
        if not self.features:
            return
        o = np.array([[offset.get(n, 0.0) for n in self.features]], dtype=float)
        if not np.all(np.isfinite(o)):
            return
        self._extra = o if self._extra is None else np.vstack([self._extra, o])

    def residuals(self, x: dict[str, float]) -> dict[str, float]:
        """Per feature, its standardised residual given the other features (see class doc)."""
        return self.score_and_residuals(x)[1]

    def _learn(self, x: dict[str, float], ts_ms: int) -> None:
        if not self.features:
            self.features = tuple(sorted(x))
            d = len(self.features)
            self._cov = np.zeros((d, d))
            if self.center:
                self._mean = np.array([x[n] for n in self.features], dtype=float)
                return
            self._mean = np.zeros(d)
            first = self._diff(x)
            self._cov = np.outer(first, first)
            return
        diff = self._diff(x)
        # a fixed rate from the start would let the first windows dominate; use 1/n until
        # it falls below ``fading``
        a = max(self.fading, 1.0 / (self.n_learned + 1))
        if self.n_learned >= 2 and self.is_warm:
            d2 = self._d2(diff, self._precision() @ diff)
            score = self._scale_score(d2)
            if self.slow_above is not None and score >= self.slow_above:
                a *= 0.1  # an incident must not become normal within hours
            if score > self.clip:
                # shrink the step so the window counts as one scoring ``clip``
                if self.normalize:
                    d = self._judged()
                    c = 2.0 / (9.0 * d)
                    target = d * (self.clip * math.sqrt(c) + 1.0 - c) ** 3
                    diff = diff * math.sqrt(target / d2)
                else:
                    diff = diff * (self.clip / score)
        if self.center:
            self._mean = self._mean + a * diff
            self._cov = (1.0 - a) * (self._cov + a * np.outer(diff, diff))
        else:
            self._cov = (1.0 - a) * self._cov + a * np.outer(diff, diff)
        if self._extra is not None:
            self._extra = self._extra * math.sqrt(1.0 - a)


class WindowHSTResiduals(Detector[dict[str, float]]):
    """:class:`WindowHST` as the window's judge, with a :class:`WindowMahalanobis` beside it.

    The score (and so ``is_anomaly``) is the ``HalfSpaceTrees`` score in ``[0, 1]``;
    :meth:`score_and_residuals` returns it with the Mahalanobis model's per-feature
    residuals given the others (which ``HalfSpaceTrees`` has no notion of), so a consumer of
    those residuals (the detection stage's sibling-drift CUSUM) works unchanged. Both models
    learn every accepted window; the feature set is the Mahalanobis model's.
    """

    name = "window_hst"

    def __init__(self, hst: WindowHST, residual_model: WindowMahalanobis) -> None:
        super().__init__(warmup=hst.warmup, threshold=hst.threshold)
        self.hst = hst
        self.residual_model = residual_model

    def to_state(self) -> State:
        """The Mahalanobis model whole, the HST model's parameters (it is not checkpointed)."""
        return {"hst": self.hst.to_state(), "residual_model": self.residual_model.to_state()}

    @classmethod
    def from_state(cls, d: State) -> WindowHSTResiduals:
        """The Mahalanobis model continues; the HST model and so this one warm up again."""
        return cls(
            WindowHST.from_state(read_dict(d, "hst")),
            WindowMahalanobis.from_state(read_dict(d, "residual_model")),
        )

    @property
    def features(self) -> tuple[str, ...]:
        return self.residual_model.features

    @property
    def given(self) -> tuple[str, ...]:
        """The Mahalanobis model's operating-state features (HST still sees them all)."""
        return self.residual_model.given

    @given.setter
    def given(self, names: tuple[str, ...]) -> None:
        self.residual_model.given = names

    def add_direction(self, offset: Mapping[str, float]) -> None:
        """Settling: the Mahalanobis model takes the offset (HST learns it as windows)."""
        self.residual_model.add_direction(offset)

    def _accepts(self, x: dict[str, float]) -> bool:
        if not is_finite_features(x):
            return False
        return not self.features or all(name in x for name in self.features)

    def _score(self, x: dict[str, float], ts_ms: int) -> float:
        return self.hst.score_one(x, ts_ms)

    def score_and_residuals(self, x: dict[str, float]) -> tuple[float, dict[str, float]]:
        """The HST score of ``x`` and the Mahalanobis residuals given the others."""
        if not self._accepts(x):
            return math.nan, {}
        return self.hst.score_one(x, 0), self.residual_model.score_and_residuals(x)[1]

    def _learn(self, x: dict[str, float], ts_ms: int) -> None:
        self.hst.learn_one(x, ts_ms)
        self.residual_model.learn_one(x, ts_ms)
