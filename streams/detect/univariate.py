"""Per-reading univariate detector for one (device, capability) series.

Robust to noise and daily cycles, cheap enough to run on every reading:

* a **daily profile**: 24 hourly bucket means of the series (interpolated between bucket
  centres), learned with rate ``max(1/n, profile_rate)`` so a bucket is a running mean at
  first and a slow exponential mean later; until both neighbouring buckets have data the
  baseline is a fast exponential mean (``EWMean``, River's arithmetic) instead;
* the **residual** ``value - baseline`` is standardised by its exponentially weighted
  variance (``EWVar``): a step or spike gives a large ``|z|``;
* a **Page-Hinkley test** (``PageHinkley``, River's) on the clipped ``z`` catches a slow
  drift that no single reading reveals; once it fires, the series stays flagged until the
  fast mean of ``z`` is back near zero.

Once warm, learning is *winsorised*: the residual is clipped to ``±clip`` standard deviations
before it updates the profile and the variance, so an anomaly cannot drag the baseline to
itself.

The score is ``|z|``, or at least the threshold while a drift is latched. The statistics are
those of :mod:`streams.detect.moments`, written out over one float64 array per series and
compiled (:mod:`streams.detect.seasonal_kernel`); the state checkpoints as plain numbers,
in the same shape as when it was held in those objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from streams.detect import seasonal_kernel as k
from streams.detect.base import Detector, Score
from streams.detect.moments import EWMean, EWVar, PageHinkley
from streams.detect.state import (
    State,
    read_bool,
    read_dict,
    read_float,
    read_floats,
    read_int,
    read_ints,
)

__all__ = ["SeasonalZScore"]

_NEW_NORMAL_KEYS = ("accept_ms", "drift_since", "shift")  # state added with the new-normal rule
_PH_FIELDS = {  # PageHinkley's state (in its to_state order) by array place
    "alpha": k.PH_ALPHA_AT,
    "delta": k.PH_DELTA,
    "drift_detected": k.PH_DETECTED,
    "max_decrease": k.PH_MAX_DEC,
    "mean": k.PH_MEAN,
    "min_increase": k.PH_MIN_INC,
    "min_instances": k.PH_MIN,
    "n": k.PH_N,
    "sum_decrease": k.PH_SUM_DEC,
    "sum_increase": k.PH_SUM_INC,
    "threshold": k.PH_THRESHOLD,
}


class SeasonalZScore(Detector[float]):
    """Seasonal-residual z-score plus Page-Hinkley drift, per (device, capability).

    >>> d = SeasonalZScore(warmup=50)
    >>> for i in range(200):
    ...     _ = d.process_one(20.0 + 0.1 * (i % 5), i * 60_000)
    >>> d.is_warm, d.process_one(20.2, 200 * 60_000).is_anomaly
    (True, False)
    >>> d.process_one(35.0, 201 * 60_000).is_anomaly
    True
    """

    name = "seasonal_zscore"

    def __init__(
        self,
        *,
        warmup: int = 1_440,
        threshold: float = 6.0,
        clip: float = 4.0,
        fast_fading: float = 0.05,
        var_fading: float = 0.01,
        profile_rate: float = 0.002,
        drift_delta: float = 1.0,
        drift_threshold: float = 120.0,
        drift_release: float = 1.0,
        min_std: float = 1e-6,
        rel_std_floor: float = 0.005,
        accept_ms: int = 0,
    ) -> None:
        super().__init__(warmup=warmup, threshold=threshold)
        if not 0.0 < profile_rate <= 1.0:
            msg = f"profile_rate must be in (0, 1], got {profile_rate!r}"
            raise ValueError(msg)
        if clip <= 0:
            msg = f"clip must be a positive number of standard deviations, got {clip!r}"
            raise ValueError(msg)
        self.clip = clip
        self.profile_rate = profile_rate
        self.drift_release = drift_release
        self.min_std = min_std
        self.rel_std_floor = rel_std_floor
        self.drift_delta = drift_delta
        self.drift_threshold = drift_threshold
        self.accept_ms = accept_ms  # a drift latched this long is the new normal (0: never)
        EWMean(fast_fading), EWVar(var_fading)  # their checks of the fading factors
        self._s = k.new_state(
            (
                (k.WARMUP, warmup),
                (k.THRESHOLD, threshold),
                (k.CLIP, clip),
                (k.PROFILE_RATE, profile_rate),
                (k.DRIFT_RELEASE, drift_release),
                (k.MIN_STD, min_std),
                (k.REL_STD_FLOOR, rel_std_floor),
                (k.ACCEPT_MS, accept_ms),
                (k.DRIFT_DELTA, drift_delta),
                (k.DRIFT_THRESHOLD, drift_threshold),
                (k.FAST, fast_fading),
                (k.LEVEL, fast_fading),  # fast mean of clipped z: drift release
                (k.SHIFT, fast_fading),  # the residual while drifting: the new level
                (k.VAR_X, var_fading),
                (k.VAR_SQ, var_fading),
            )
        )

    def copy(self) -> SeasonalZScore:
        """An independent copy, state included: the stage starts each new series from a
        copy of one unlearned baseline instead of checking the same parameters again."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._s = self._s.copy()
        return new

    @property
    def drifting(self) -> bool:
        """Whether a drift is latched (the series scores at least the threshold)."""
        return bool(self._s[k.DRIFTING])

    def to_state(self) -> State:
        s = self._s
        return {
            "warmup": self.warmup,
            "threshold": self.threshold,
            "clip": self.clip,
            "profile_rate": self.profile_rate,
            "drift_release": self.drift_release,
            "min_std": self.min_std,
            "rel_std_floor": self.rel_std_floor,
            "drift_delta": self.drift_delta,
            "drift_threshold": self.drift_threshold,
            "n_learned": self.n_learned,
            "fast": _mean_state(s, k.FAST),
            "var": {"mean": _mean_state(s, k.VAR_X), "sq": _mean_state(s, k.VAR_SQ)},
            "level": _mean_state(s, k.LEVEL),
            "ph": {name: _ph_value(name, s[at]) for name, at in _PH_FIELDS.items()},
            "profile": s[k.PROFILE : k.PROFILE + k.BUCKETS].tolist(),
            "counts": [int(c) for c in s[k.COUNTS : k.COUNTS + k.BUCKETS]],
            "bucket_sq": s[k.BUCKET_SQ : k.BUCKET_SQ + k.BUCKETS].tolist(),
            "bucket_n": [int(c) for c in s[k.BUCKET_N : k.BUCKET_N + k.BUCKETS]],
            "drifting": self.drifting,
            "accept_ms": self.accept_ms,
            "drift_since": int(s[k.DRIFT_SINCE]),
            "shift": _mean_state(s, k.SHIFT),
        }

    @classmethod
    def from_state(cls, d: State) -> SeasonalZScore:
        new = cls(
            warmup=read_int(d, "warmup"),
            threshold=read_float(d, "threshold"),
            clip=read_float(d, "clip"),
            profile_rate=read_float(d, "profile_rate"),
            drift_release=read_float(d, "drift_release"),
            min_std=read_float(d, "min_std"),
            rel_std_floor=read_float(d, "rel_std_floor"),
            drift_delta=read_float(d, "drift_delta"),
            drift_threshold=read_float(d, "drift_threshold"),
        )
        s = new._s
        _set_mean(s, k.FAST, EWMean.from_state(read_dict(d, "fast")))
        var = EWVar.from_state(read_dict(d, "var"))
        _set_mean(s, k.VAR_X, var.of_x)
        _set_mean(s, k.VAR_SQ, var.of_sq)
        _set_mean(s, k.LEVEL, EWMean.from_state(read_dict(d, "level")))
        ph = PageHinkley.from_state(read_dict(d, "ph"))
        for name, at in _PH_FIELDS.items():
            s[at] = getattr(ph, name)
        s[k.PROFILE : k.PROFILE + k.BUCKETS] = read_floats(d, "profile", k.BUCKETS)
        s[k.COUNTS : k.COUNTS + k.BUCKETS] = read_ints(d, "counts", k.BUCKETS)
        s[k.BUCKET_SQ : k.BUCKET_SQ + k.BUCKETS] = read_floats(d, "bucket_sq", k.BUCKETS)
        s[k.BUCKET_N : k.BUCKET_N + k.BUCKETS] = read_ints(d, "bucket_n", k.BUCKETS)
        s[k.DRIFTING] = read_bool(d, "drifting")
        if any(key in d for key in _NEW_NORMAL_KEYS):  # all absent in states checkpointed before
            new.accept_ms = s[k.ACCEPT_MS] = read_int(d, "accept_ms")
            s[k.DRIFT_SINCE] = read_int(d, "drift_since")
            _set_mean(s, k.SHIFT, EWMean.from_state(read_dict(d, "shift")))
        return new._learned(d)

    def _accepts(self, x: float) -> bool:
        return isinstance(x, float | int) and math.isfinite(x)

    def _score(self, x: float, ts_ms: int) -> float:
        return float(k.score(self._s, float(x), ts_ms, self.n_learned))

    def _learn(self, x: float, ts_ms: int) -> None:
        k.learn(self._s, float(x), ts_ms, self.n_learned)

    def z(self, x: float, ts_ms: int) -> float:
        """Signed residual of ``x`` from the baseline at ``ts_ms`` in the residual's current
        standard deviation (the raw score, before the recent-level and drift rules); 0
        before two readings were learned. Does not change the state."""
        if self.n_learned < 2 or not self._accepts(x):
            return 0.0
        return float(k.z(self._s, float(x), ts_ms))

    def residual(self, x: float, ts_ms: int) -> float:
        """``x`` minus the baseline at ``ts_ms`` (the daily profile, or the recent level
        before the profile covers the hour); 0 before two readings were learned."""
        if self.n_learned < 2:
            return 0.0
        return x - float(k.baseline(self._s, ts_ms, self.n_learned))

    def spread(self) -> float:
        """The residual's typical standard deviation: the mean of the hourly spreads learned
        so far (the recent spread before any), floored like the score's."""
        return float(k.spread(self._s, self.n_learned))

    def deviation(self, x: float, ts_ms: int) -> float:
        """Signed distance of ``x`` from the daily profile at ``ts_ms``, in the spread usual
        at that hour (not the recent spread, which grows with a slow ramp and hides it)."""
        if self.n_learned < 2:
            return 0.0
        return float(k.deviation(self._s, float(x), ts_ms))

    def process_one(self, x: float, ts_ms: int, *, learn: bool = True) -> Score:
        """:meth:`Detector.process_one`, with one baseline and spread for score and learning."""
        score, flagged, warm = self.process(x, ts_ms, learn)
        return Score(self.name, score, self.threshold, flagged, warm)

    def process(self, x: float, ts_ms: int, learn: bool) -> tuple[float, bool, bool]:
        """``(score, is_anomaly, warm)`` of :meth:`process_one`, no ``Score`` allocated."""
        n = self.n_learned
        warm = n >= self.warmup
        if type(x) is not float:
            if not self._accepts(x):
                return math.nan, False, warm  # neither scored nor learned
            x = float(x)
        elif not math.isfinite(x):
            return math.nan, False, warm
        if type(ts_ms) is int and type(learn) is bool:  # the entry's exact types
            score = (_entry[0] if _entry else _load_entry())(self._s, x, ts_ms, learn, n)
        else:
            score = k.process(self._s, x, ts_ms, learn, n)
        if learn:
            self.n_learned = n + 1
        return score, warm and math.isfinite(score) and score >= self.threshold, warm


_entry: list[Callable[[np.ndarray, float, int, bool, int], float]] = []
"""``k.process`` without numba's per-call dispatch, once loaded (at the first reading)."""


def _load_entry() -> Callable[[np.ndarray, float, int, bool, int], float]:
    _entry.append(k.process_entry())
    return _entry[0]


def _mean_state(s: np.ndarray, at: int) -> State:
    """``EWMean.to_state`` of the mean at ``at``."""
    return {"fading": float(s[at]), "mean": float(s[at + 1]), "started": bool(s[at + 2])}


def _set_mean(s: np.ndarray, at: int, m: EWMean) -> None:
    s[at], s[at + 1], s[at + 2] = m.fading_factor, m.mean, m.started


def _ph_value(name: str, value: float) -> float | int | bool:
    if name == "min_instances":
        return int(value)
    if name == "drift_detected":
        return bool(value)
    return float(value)
