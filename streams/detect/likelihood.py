"""Anomaly likelihood: how unusual a detector's *recent* scores are for this series.

The idea of Numenta's anomaly likelihood (Ahmad et al., "Unsupervised real-time anomaly
detection for streaming data", Neurocomputing 2017), on top of any raw score (here the
seasonal detector's ``|z|``):

* the raw scores are averaged over the last ``short`` inputs (a single noisy score moves the
  average a little, a sustained deviation moves it a lot);
* the distribution of that average is learned as a normal with an exponentially weighted
  mean and variance (rate ``max(1/n, 1/history)``: a running mean at first, then a memory of
  about ``history`` inputs) — so a series whose scores are always heavy-tailed (bursty
  traffic, a noisy sensor) raises its own bar, and a quiet series lowers it;
* the likelihood score is ``-log10`` of the upper tail probability of the current average
  under that normal: 4.0 means "one in ten thousand".

Unlike a fixed threshold on the raw score, this adapts to each series' own score
distribution with no per-series configuration, which is what NAB rewards. Memory is constant
(``short`` floats and three numbers), so the state checkpoints as small as the detector's.
"""

from __future__ import annotations

import math

from streams.detect.base import Detector
from streams.detect.state import State, StateError, read_float, read_floats, read_int

__all__ = ["AnomalyLikelihood"]

_MAX_SCORE = 300.0  # -log10 of the smallest positive double, about: a cap for "certain"
_MAX_RAW = 50.0  # raw scores are clipped here: one absurd reading must not blind the series


class AnomalyLikelihood(Detector[float]):
    """``-log10`` tail probability of the recent mean raw score under its learned normal.

    >>> import random
    >>> rng = random.Random(1)
    >>> lik = AnomalyLikelihood(warmup=50, short=5, threshold=4.0)
    >>> for i in range(2000):
    ...     _ = lik.process_one(abs(rng.gauss(0.0, 1.0)), i)
    >>> lik.process_one(2.5, 2000).is_anomaly  # one large score: the average barely moves
    False
    >>> [lik.process_one(2.5, 2001 + i).is_anomaly for i in range(3)]  # it lasts
    [False, False, True]
    """

    name = "anomaly_likelihood"

    def __init__(
        self,
        *,
        warmup: int = 300,
        threshold: float = 4.0,
        short: int = 10,
        history: int = 8_640,
        min_std: float = 1e-3,
    ) -> None:
        super().__init__(warmup=warmup, threshold=threshold)
        if short < 1:
            msg = f"short must be >= 1 inputs, got {short!r}"
            raise ValueError(msg)
        if history < 2:
            msg = f"history must be >= 2 inputs, got {history!r}"
            raise ValueError(msg)
        self.short = short
        self.history = history
        self.min_std = min_std
        self._recent: list[float] = []  # the last ``short - 1`` raw scores, oldest first
        self._mean = 0.0
        self._var = 0.0

    def to_state(self) -> State:
        return {
            "warmup": self.warmup,
            "threshold": self.threshold,
            "short": self.short,
            "history": self.history,
            "min_std": self.min_std,
            "n_learned": self.n_learned,
            "recent": self._recent,
            "mean": self._mean,
            "var": self._var,
        }

    @classmethod
    def from_state(cls, d: State) -> AnomalyLikelihood:
        new = cls(
            warmup=read_int(d, "warmup"),
            threshold=read_float(d, "threshold"),
            short=read_int(d, "short"),
            history=read_int(d, "history"),
            min_std=read_float(d, "min_std"),
        )
        recent = read_floats(d, "recent")
        if len(recent) >= new.short:
            msg = f"recent: expected fewer than short={new.short} scores, got {len(recent)}"
            raise StateError(msg)
        new._recent = recent
        new._mean = read_float(d, "mean")
        new._var = read_float(d, "var")
        return new._learned(d)

    def _accepts(self, x: float) -> bool:
        return isinstance(x, float | int) and math.isfinite(x)

    def _average(self, x: float) -> float:
        """The mean of the last ``short`` raw scores, ``x`` the newest."""
        x = min(abs(x), _MAX_RAW)
        return (sum(self._recent) + x) / (len(self._recent) + 1)

    def tail(self, x: float) -> float:
        """Upper tail probability of the recent average, ``x`` included (1.0 at or below
        the learned mean: a calm stretch is never anomalous)."""
        std = max(math.sqrt(self._var), self.min_std)
        z = (self._average(x) - self._mean) / std
        return 0.5 * math.erfc(z / math.sqrt(2.0)) if z > 0 else 1.0

    def _score(self, x: float, ts_ms: int) -> float:
        if self.n_learned < 2:
            return 0.0
        p = self.tail(x)
        return _MAX_SCORE if p <= 0.0 else min(-math.log10(p), _MAX_SCORE)

    def _learn(self, x: float, ts_ms: int) -> None:
        m = self._average(x)
        self._recent.append(min(abs(x), _MAX_RAW))
        if len(self._recent) >= self.short:
            del self._recent[0]
        rate = max(1.0 / (self.n_learned + 1), 1.0 / self.history)
        d = m - self._mean
        self._mean += rate * d
        self._var = (1.0 - rate) * (self._var + rate * d * d)
