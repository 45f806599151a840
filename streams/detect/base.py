"""The detector contract: one small interface that every detector in ``streams.detect`` keeps.

A detector scores an input *before* learning it (River's convention), so an anomaly is judged
against what came before it. Time is a parameter (event time in epoch milliseconds); there is
no clock and no I/O. State is small and bounded, and converts to a plain dict
(:meth:`Detector.to_state`, numbers, strings and lists only) and back
(:meth:`Detector.from_state`, types checked), so it is checkpointed to the detector-state
changelog and restored after a restart without a new warm-up.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from streams.detect.state import State, read_int

__all__ = ["Detector", "Score", "is_finite_features"]

X = TypeVar("X")


@dataclass(frozen=True, slots=True)
class Score:
    """One detector's verdict on one input (the fields of an ``AnomalyScore`` record)."""

    detector: str
    score: float
    threshold: float
    is_anomaly: bool
    warm: bool


class Detector(ABC, Generic[X]):
    """Scores then learns inputs of type ``X`` (a float, or a dict of features).

    Subclasses implement :meth:`_score`, :meth:`_learn` and :meth:`_accepts`. The base class
    keeps the warm-up count and refuses to learn what ``_accepts`` rejects (NaN, infinities),
    so a bad input can never poison the state.
    """

    name: str = "detector"

    def __init__(self, *, warmup: int, threshold: float) -> None:
        if warmup < 0:
            msg = f"warmup must be >= 0 inputs, got {warmup}"
            raise ValueError(msg)
        if not math.isfinite(threshold) or threshold <= 0:
            msg = f"threshold must be a positive finite number, got {threshold!r}"
            raise ValueError(msg)
        self.warmup = warmup
        self.threshold = threshold
        self.n_learned = 0

    @property
    def is_warm(self) -> bool:
        """True once the detector has learned ``warmup`` inputs; before that it never alerts."""
        return self.n_learned >= self.warmup

    def learn_one(self, x: X, ts_ms: int) -> bool:
        """Learn one input; False (state untouched) when the input is not acceptable."""
        if not self._accepts(x):
            return False
        self._learn(x, ts_ms)
        self.n_learned += 1
        return True

    def score_one(self, x: X, ts_ms: int) -> float:
        """Anomaly score of ``x`` (higher = more anomalous); does not change the state.

        An unacceptable input scores ``nan``: it is neither normal nor anomalous.
        """
        if not self._accepts(x):
            return math.nan
        return self._score(x, ts_ms)

    def process_one(self, x: X, ts_ms: int, *, learn: bool = True) -> Score:
        """Score ``x``, then learn it when ``learn`` (pass False for SUSPECT readings).

        ``is_anomaly`` is False before warm-up, whatever the score.
        """
        score = self.score_one(x, ts_ms)
        warm = self.is_warm
        if learn:
            self.learn_one(x, ts_ms)
        flagged = warm and math.isfinite(score) and score >= self.threshold
        return Score(self.name, score, self.threshold, flagged, warm)

    @abstractmethod
    def to_state(self) -> State:
        """The whole state as a plain dict (parameters included): see ``streams.detect.state``."""

    @classmethod
    @abstractmethod
    def from_state(cls, d: State) -> Self:
        """A detector rebuilt from :meth:`to_state`'s dict; ``StateError`` (or ``ValueError``
        for an out-of-range parameter) when it is not one."""

    def _learned(self, d: Any) -> Self:
        """This detector with the learned count of state ``d`` (for ``from_state``)."""
        n = read_int(d, "n_learned")
        if n < 0:
            msg = f"n_learned: expected >= 0, got {n}"
            raise ValueError(msg)
        self.n_learned = n
        return self

    @abstractmethod
    def _accepts(self, x: X) -> bool:
        """Whether ``x`` may be scored and learned."""

    @abstractmethod
    def _score(self, x: X, ts_ms: int) -> float:
        """Score an accepted input without changing the state."""

    @abstractmethod
    def _learn(self, x: X, ts_ms: int) -> None:
        """Update the state with an accepted input."""


def is_finite_features(x: dict[str, float]) -> bool:
    """True when ``x`` is non-empty and every feature is a finite number.

    >>> is_finite_features({"a": 1.0}), is_finite_features({"a": float("nan")})
    (True, False)
    """
    return bool(x) and all(isinstance(v, float | int) and math.isfinite(v) for v in x.values())
