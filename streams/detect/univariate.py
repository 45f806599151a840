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
those of :mod:`streams.detect.moments`, whose state checkpoints as plain numbers.
"""

from __future__ import annotations

import math

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

_HOUR_MS = 3_600_000
_DAY_MS = 24 * _HOUR_MS
_BUCKETS = 24
_NEW_NORMAL_KEYS = ("accept_ms", "drift_since", "shift")  # state added with the new-normal rule
_MIN_BUCKET = 2  # readings an hour's bucket needs before the profile is trusted there


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
        self._fast = EWMean(fast_fading)
        self._var = EWVar(var_fading)
        self._level = EWMean(fast_fading)  # fast mean of clipped z: drift release
        self._ph_delta = drift_delta
        self._ph_threshold = drift_threshold
        self._ph = self._new_ph()
        self._profile = [0.0] * _BUCKETS
        self._counts = [0] * _BUCKETS
        self._bucket_sq = [0.0] * _BUCKETS  # mean squared residual per hour of the day
        self._bucket_n = [0] * _BUCKETS
        self.drifting = False
        self.accept_ms = accept_ms  # a drift latched this long is the new normal (0: never)
        self._drift_since = 0  # event time the drift was latched
        self._shift = EWMean(fast_fading)  # the residual while drifting: the new level

    def _new_ph(self) -> PageHinkley:
        return PageHinkley(min_instances=30, delta=self._ph_delta, threshold=self._ph_threshold)

    def to_state(self) -> State:
        return {
            "warmup": self.warmup,
            "threshold": self.threshold,
            "clip": self.clip,
            "profile_rate": self.profile_rate,
            "drift_release": self.drift_release,
            "min_std": self.min_std,
            "rel_std_floor": self.rel_std_floor,
            "drift_delta": self._ph_delta,
            "drift_threshold": self._ph_threshold,
            "n_learned": self.n_learned,
            "fast": self._fast.to_state(),
            "var": self._var.to_state(),
            "level": self._level.to_state(),
            "ph": self._ph.to_state(),
            "profile": self._profile,
            "counts": self._counts,
            "bucket_sq": self._bucket_sq,
            "bucket_n": self._bucket_n,
            "drifting": self.drifting,
            "accept_ms": self.accept_ms,
            "drift_since": self._drift_since,
            "shift": self._shift.to_state(),
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
        new._fast = EWMean.from_state(read_dict(d, "fast"))
        new._var = EWVar.from_state(read_dict(d, "var"))
        new._level = EWMean.from_state(read_dict(d, "level"))
        new._ph = PageHinkley.from_state(read_dict(d, "ph"))
        new._profile = read_floats(d, "profile", _BUCKETS)
        new._counts = read_ints(d, "counts", _BUCKETS)
        new._bucket_sq = read_floats(d, "bucket_sq", _BUCKETS)
        new._bucket_n = read_ints(d, "bucket_n", _BUCKETS)
        new.drifting = read_bool(d, "drifting")
        if any(k in d for k in _NEW_NORMAL_KEYS):  # all absent in states checkpointed before
            new.accept_ms = read_int(d, "accept_ms")
            new._drift_since = read_int(d, "drift_since")
            new._shift = EWMean.from_state(read_dict(d, "shift"))
        return new._learned(d)

    def _accepts(self, x: float) -> bool:
        return isinstance(x, float | int) and math.isfinite(x)

    def _baseline(self, ts_ms: int) -> float:
        pos = (ts_ms % _DAY_MS) / _HOUR_MS - 0.5  # bucket i is centred at i + 0.5 hours
        lo = math.floor(pos)
        frac = pos - lo
        i0, i1 = lo % _BUCKETS, (lo + 1) % _BUCKETS
        if self._counts[i0] >= _MIN_BUCKET and self._counts[i1] >= _MIN_BUCKET:
            return self._profile[i0] * (1.0 - frac) + self._profile[i1] * frac
        return float(self._fast.get()) if self.n_learned else 0.0

    def _std(self, base: float, ts_ms: int) -> float:
        """The residual's standard deviation: the larger of the recent one and the one
        usually seen at this hour (a daily schedule step, e.g. a charge starting at 09:00,
        is normal at 09:00), floored at ``rel_std_floor`` of the level (a few millivolts on
        a 3.3 V cell plateau are not an anomaly, however quiet the cell)."""
        i = (ts_ms % _DAY_MS) // _HOUR_MS
        bucket = self._bucket_sq[i] if self._bucket_n[i] >= _MIN_BUCKET else 0.0
        var = max(self._var.get(), bucket, 0.0)
        return max(math.sqrt(var), self.min_std, self.rel_std_floor * abs(base))

    def _z(self, x: float, ts_ms: int) -> float:
        if self.n_learned < 2:
            return 0.0
        base = self._baseline(ts_ms)
        return (x - base) / self._std(base, ts_ms)

    def z(self, x: float, ts_ms: int) -> float:
        """Signed residual of ``x`` from the baseline at ``ts_ms`` in the residual's current
        standard deviation (the raw score, before the recent-level and drift rules); 0
        before two readings were learned. Does not change the state."""
        return self._z(x, ts_ms) if self._accepts(x) else 0.0

    def residual(self, x: float, ts_ms: int) -> float:
        """``x`` minus the baseline at ``ts_ms`` (the daily profile, or the recent level
        before the profile covers the hour); 0 before two readings were learned."""
        if self.n_learned < 2:
            return 0.0
        return x - self._baseline(ts_ms)

    def spread(self) -> float:
        """The residual's typical standard deviation: the mean of the hourly spreads learned
        so far (the recent spread before any), floored like the score's."""
        sq = [v for v, n in zip(self._bucket_sq, self._bucket_n, strict=True) if n >= _MIN_BUCKET]
        var = sum(sq) / len(sq) if sq else max(self._var.get(), 0.0)
        level = abs(float(self._fast.get())) if self.n_learned else 0.0
        return max(math.sqrt(var), self.min_std, self.rel_std_floor * level)

    def deviation(self, x: float, ts_ms: int) -> float:
        """Signed distance of ``x`` from the daily profile at ``ts_ms``, in the spread usual
        at that hour (not the recent spread, which grows with a slow ramp and hides it)."""
        if self.n_learned < 2:
            return 0.0
        base = self._baseline(ts_ms)
        i = (ts_ms % _DAY_MS) // _HOUR_MS
        var = self._bucket_sq[i] if self._bucket_n[i] >= _MIN_BUCKET else self._var.get()
        std = max(math.sqrt(max(var, 0.0)), self.min_std, self.rel_std_floor * abs(base))
        return (x - base) / std

    def _frame(self, ts_ms: int) -> tuple[float, float, int, int, int]:
        """``(baseline, std, hour, i0, i1)`` at ``ts_ms``: :meth:`_baseline` and :meth:`_std`
        in one pass (the score and the learning of a reading share them), the hour's bucket
        and the two buckets the baseline interpolates between."""
        t = ts_ms % _DAY_MS
        pos = t / _HOUR_MS - 0.5  # bucket i is centred at i + 0.5 hours
        lo = math.floor(pos)
        frac = pos - lo
        i0, i1 = lo % _BUCKETS, (lo + 1) % _BUCKETS
        counts = self._counts
        if counts[i0] >= _MIN_BUCKET and counts[i1] >= _MIN_BUCKET:
            profile = self._profile
            base = profile[i0] * (1.0 - frac) + profile[i1] * frac
        else:
            base = float(self._fast.mean) if self.n_learned else 0.0
        # _std, written out (the comparisons are those of max(), NaN included)
        i = t // _HOUR_MS
        ew = self._var
        m = ew.of_x.mean
        var = ew.of_sq.mean - m * m
        if self._bucket_n[i] >= _MIN_BUCKET:
            bucket = self._bucket_sq[i]
            if bucket > var:
                var = bucket
        if var < 0.0:
            var = 0.0
        std = math.sqrt(var)
        if self.min_std > std:
            std = self.min_std
        floor = self.rel_std_floor * abs(base)
        if floor > std:
            std = floor
        return base, std, i, i0, i1

    def _score(self, x: float, ts_ms: int) -> float:
        base, std, _, _, _ = self._frame(ts_ms)
        return self._score_at(x, base, std)

    def _score_at(self, x: float, base: float, std: float) -> float:
        if self.n_learned >= 2:
            z = abs((x - base) / std)
            # far from the daily profile *and* from the recent level: a state that differs
            # from yesterday's (a battery at another charge) is not an anomaly by itself
            z = min(z, abs(x - float(self._fast.mean)) / std)
        else:
            z = 0.0
        return max(z, self.threshold) if self.drifting else z

    def _learn(self, x: float, ts_ms: int) -> None:
        self._learn_at(x, ts_ms, *self._frame(ts_ms))

    def _learn_at(
        self, x: float, ts_ms: int, base: float, std: float, i: int, i0: int, i1: int
    ) -> None:
        learned = self.n_learned
        z = (x - base) / std if learned >= 2 else 0.0
        clip = self.clip
        zc = z if z < clip else clip  # max(-clip, min(clip, z)), NaN included
        if not zc > -clip:
            zc = -clip
        # once warm, learning is winsorised: an outlier moves the baseline by at most ``clip``
        # std; during warm-up the variance is not yet trustworthy, so values are taken as is
        xw = base + zc * std if learned >= self.warmup else x
        self._fast.update(xw)
        self._var.update(xw - base if learned >= 2 else 0.0)
        counts = self._counts
        c = counts[i] = counts[i] + 1
        prate = self.profile_rate
        rate = 1.0 / c
        if prate > rate:
            rate = prate
        profile = self._profile
        profile[i] += rate * (xw - profile[i])
        if counts[i0] >= _MIN_BUCKET and counts[i1] >= _MIN_BUCKET:
            # the spread usual at this hour, around the profile (not around the fast mean
            # used before the profile covers the hour: its lag is not the series' spread)
            n = self._bucket_n[i] = self._bucket_n[i] + 1
            brate = 1.0 / n
            if prate > brate:
                brate = prate
            self._bucket_sq[i] += brate * ((xw - base) ** 2 - self._bucket_sq[i])
        self._level.update(zc)
        if self.n_learned + 1 == self.warmup:
            # what the test summed while the profile was immature is not evidence of drift
            self._ph = self._new_ph()
        self._ph.update(zc)
        if self.drifting:
            self._shift.update(x - base)
        if self._ph.drift_detected and self.n_learned >= self.warmup and not self.drifting:
            self.drifting = True
            self._drift_since = ts_ms
            self._shift = EWMean(self._shift.fading_factor)
            self._shift.update(x - base)
        elif self.drifting and abs(self._level.get()) < self.drift_release:
            self.drifting = False
        elif self.drifting and self.accept_ms and ts_ms - self._drift_since >= self.accept_ms:
            self._accept_new_level()

    def process_one(self, x: float, ts_ms: int, *, learn: bool = True) -> Score:
        """:meth:`Detector.process_one`, with one baseline and spread for score and learning."""
        score, flagged, warm = self.process(x, ts_ms, learn)
        return Score(self.name, score, self.threshold, flagged, warm)

    def process(self, x: float, ts_ms: int, learn: bool) -> tuple[float, bool, bool]:
        """``(score, is_anomaly, warm)`` of :meth:`process_one`, no ``Score`` allocated."""
        warm = self.n_learned >= self.warmup
        if not (math.isfinite(x) if type(x) is float else self._accepts(x)):
            return math.nan, False, warm  # neither scored nor learned
        frame = self._frame(ts_ms)
        score = self._score_at(x, frame[0], frame[1])
        if learn:
            self._learn_at(x, ts_ms, *frame)
            self.n_learned += 1
        return score, warm and math.isfinite(score) and score >= self.threshold, warm

    def _accept_new_level(self) -> None:
        """A drift that lasted ``accept_ms`` is the series' new normal (a sensor replaced, a
        machine re-tuned after maintenance): the profile moves by the residual seen while
        drifting, the drift test starts over, and the series is judged around its new level
        instead of being alerted on for weeks while the slow profile catches up."""
        shift = float(self._shift.get())
        self._profile = [p + shift for p in self._profile]
        self._level = EWMean(self._level.fading_factor)
        self._ph = self._new_ph()
        self.drifting = False
