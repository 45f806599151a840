"""The compiled seasonal detector computes what its Python form computed, bit for bit.

``Reference`` below is the seasonal z-score written in Python over the statistics of
``streams.detect.moments`` (themselves equal to River's, bit for bit: test_detect_moments),
as the detector was before its arithmetic moved to ``streams.detect.seasonal_kernel``; one
change, there as here: the squared residual is ``e * e`` (``e ** 2`` goes through the C
library's ``pow``, which differs from the product in the last bit for about 1 value in
1,200). Seeded series with daily cycles, steps, spikes, NaN, infinities, unlearned and
out-of-order readings go through both; every score, every derived figure and, at intervals,
the checkpointed state must be equal.
"""

from __future__ import annotations

import json
import math
import random

import pytest
from numba.core.errors import TypingError

from streams.detect import seasonal_kernel as k
from streams.detect.moments import EWMean, EWVar, PageHinkley
from streams.detect.univariate import SeasonalZScore

HOUR = 3_600_000
DAY = 24 * HOUR


class Reference:
    """SeasonalZScore as plain Python (the defaults of the detector)."""

    def __init__(self, warmup: int, threshold: float, accept_ms: int) -> None:
        self.warmup, self.threshold, self.accept_ms = warmup, threshold, accept_ms
        self.clip, self.prate, self.release = 4.0, 0.002, 1.0
        self.min_std, self.rel_floor = 1e-6, 0.005
        self.fast, self.var = EWMean(0.05), EWVar(0.01)
        self.level, self.shift = EWMean(0.05), EWMean(0.05)
        self.ph = self._ph()
        self.profile, self.counts = [0.0] * 24, [0] * 24
        self.bucket_sq, self.bucket_n = [0.0] * 24, [0] * 24
        self.drifting, self.since, self.n = False, 0, 0

    @staticmethod
    def _ph() -> PageHinkley:
        return PageHinkley(min_instances=30, delta=1.0, threshold=120.0)

    def base(self, ts: int) -> tuple[float, int, int, int]:
        pos = (ts % DAY) / HOUR - 0.5
        lo = math.floor(pos)
        i0, i1 = lo % 24, (lo + 1) % 24
        if self.counts[i0] >= 2 and self.counts[i1] >= 2:
            b = self.profile[i0] * (1.0 - (pos - lo)) + self.profile[i1] * (pos - lo)
        else:
            b = self.fast.get() if self.n else 0.0
        return b, (ts % DAY) // HOUR, i0, i1

    def std(self, b: float, i: int) -> float:
        bucket = self.bucket_sq[i] if self.bucket_n[i] >= 2 else 0.0
        var = max(self.var.get(), bucket, 0.0)
        return max(math.sqrt(var), self.min_std, self.rel_floor * abs(b))

    def process(self, x: float, ts: int, learn: bool) -> float:
        if not math.isfinite(x):
            return math.nan
        b, i, i0, i1 = self.base(ts)
        std = self.std(b, i)
        z = min(abs((x - b) / std), abs(x - self.fast.get()) / std) if self.n >= 2 else 0.0
        score = max(z, self.threshold) if self.drifting else z
        if learn:
            self.learn(x, ts, b, std, i, i0, i1)
            self.n += 1
        return score

    def learn(self, x: float, ts: int, b: float, std: float, i: int, i0: int, i1: int) -> None:
        zc = max(-self.clip, min(self.clip, (x - b) / std if self.n >= 2 else 0.0))
        xw = b + zc * std if self.n >= self.warmup else x
        self.fast.update(xw)
        self.var.update(xw - b if self.n >= 2 else 0.0)
        self.counts[i] += 1
        self.profile[i] += max(1.0 / self.counts[i], self.prate) * (xw - self.profile[i])
        if self.counts[i0] >= 2 and self.counts[i1] >= 2:
            self.bucket_n[i] += 1
            rate = max(1.0 / self.bucket_n[i], self.prate)
            self.bucket_sq[i] += rate * ((xw - b) * (xw - b) - self.bucket_sq[i])
        self.level.update(zc)
        if self.n + 1 == self.warmup:
            self.ph = self._ph()
        self.ph.update(zc)
        if self.drifting:
            self.shift.update(x - b)
        if self.ph.drift_detected and self.n >= self.warmup and not self.drifting:
            self.drifting, self.since = True, ts
            self.shift = EWMean(0.05)
            self.shift.update(x - b)
        elif self.drifting and abs(self.level.get()) < self.release:
            self.drifting = False
        elif self.drifting and self.accept_ms and ts - self.since >= self.accept_ms:
            self.profile = [p + self.shift.get() for p in self.profile]
            self.level, self.ph, self.drifting = EWMean(0.05), self._ph(), False

    def figures(self, x: float, ts: int) -> tuple[float, ...]:
        """z, residual, deviation and spread, as the detector's methods give them."""
        if self.n < 2:
            return (0.0, 0.0, 0.0, self._spread())
        b, i, _, _ = self.base(ts)
        var = self.bucket_sq[i] if self.bucket_n[i] >= 2 else self.var.get()
        dev_std = max(math.sqrt(max(var, 0.0)), self.min_std, self.rel_floor * abs(b))
        return ((x - b) / self.std(b, i), x - b, (x - b) / dev_std, self._spread())

    def _spread(self) -> float:
        sq = [v for v, n in zip(self.bucket_sq, self.bucket_n, strict=True) if n >= 2]
        total = 0.0
        for v in sq:  # in order (sum() of Python 3.12 compensates)
            total += v
        var = total / len(sq) if sq else max(self.var.get(), 0.0)
        level = abs(self.fast.get()) if self.n else 0.0
        return max(math.sqrt(var), self.min_std, self.rel_floor * level)


def _series(seed: int) -> list[tuple[float, int, bool]]:
    rng = random.Random(seed)
    ts = 1_767_225_600_000 + rng.randint(-(10**9), 10**9)
    level, noise = rng.uniform(-50, 300), rng.uniform(0.001, 5)
    n = rng.choice([60, 600, 4_000])
    step_at, step = int(n * rng.uniform(0.4, 0.8)), rng.choice([-1, 1]) * rng.uniform(5, 40)
    back_at = n if rng.random() < 0.5 else step_at + rng.randint(30, 600)
    out = []
    for i in range(n):
        ts += rng.choice([60_000, 120_000, 120_000, 300_000, -5_000, 0])
        shifted = step_at <= i < back_at  # a step (a drift, perhaps a new normal), or back
        x = level + noise * (rng.gauss(0, 1) + step * shifted)
        x += 10 * math.sin(2 * math.pi * ts / DAY)
        u = rng.random()
        if u < 0.01:
            x += rng.uniform(10, 100) * noise  # a spike
        elif u < 0.012:
            x = math.nan
        elif u < 0.013:
            x = math.inf
        out.append((x, ts, rng.random() > 0.1))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_compiled_detector_equals_the_python_reference_bit_for_bit(seed: int) -> None:
    rng = random.Random(seed)
    warmup, threshold = rng.choice([10, 50, 300]), rng.choice([3.0, 6.0])
    accept_ms = rng.choice([0, HOUR])
    ref = Reference(warmup, threshold, accept_ms)
    det = SeasonalZScore(warmup=warmup, threshold=threshold, accept_ms=accept_ms)
    for step, (x, ts, learn) in enumerate(_series(seed)):
        score, flagged, warm = det.process(x, ts, learn)
        expected = ref.process(x, ts, learn)
        assert repr(score) == repr(expected), step
        assert flagged == (warm and math.isfinite(expected) and expected >= threshold), step
        probe = x if math.isfinite(x) else 1.0
        got = (det.z(probe, ts), det.residual(probe, ts), det.deviation(probe, ts))
        assert repr((*got, det.spread())) == repr(ref.figures(probe, ts)), step
        assert (det.drifting, det.n_learned) == (ref.drifting, ref.n), step
        if step % 250 == 0:  # through a checkpoint
            state = json.loads(json.dumps(det.to_state()))
            assert state["profile"] == ref.profile and state["counts"] == ref.counts
            assert state["ph"] == ref.ph.to_state() and state["var"] == ref.var.to_state()
            det = SeasonalZScore.from_state(state)
            assert det.to_state() == state


def test_a_state_is_one_small_array_and_its_checkpoint_has_the_python_types() -> None:
    det = SeasonalZScore(warmup=3)
    for i in range(10):
        det.process(1.0 + i % 2, i * 60_000, True)
    state = det.to_state()
    assert isinstance(state["n_learned"], int) and state["n_learned"] == 10
    assert all(type(c) is int for c in state["counts"] + state["bucket_n"])
    assert all(type(v) is float for v in state["profile"] + state["bucket_sq"])
    assert type(state["ph"]["min_instances"]) is int
    assert type(state["ph"]["drift_detected"]) is bool
    assert type(state["drift_since"]) is int and type(state["fast"]["started"]) is bool
    assert det._s.nbytes <= 1_100  # the whole learned state of a series


def test_the_series_above_latch_drifts_and_end_them() -> None:
    """The comparison covers the drift rules: drifts latched, released or accepted."""
    latched = ended = 0
    for seed in range(40):
        rng = random.Random(seed)
        warmup, threshold = rng.choice([10, 50, 300]), rng.choice([3.0, 6.0])
        det = SeasonalZScore(warmup=warmup, threshold=threshold, accept_ms=rng.choice([0, HOUR]))
        before = False
        for x, ts, learn in _series(seed):
            det.process(x, ts, learn)
            latched += det.drifting and not before
            ended += before and not det.drifting
            before = det.drifting
    assert latched >= 8 and ended >= 6


def test_a_checkpoint_in_the_python_detectors_shape_loads_and_continues_alike() -> None:
    """A worker restarted on this code restores states checkpointed by the Python detector
    (the same dict): built here from the reference's objects, it scores on identically."""
    series = _series(3)
    ref = Reference(10, 6.0, HOUR)
    half = len(series) // 2
    for x, ts, learn in series[:half]:
        ref.process(x, ts, learn)
    state = {
        "warmup": 10,
        "threshold": 6.0,
        "clip": 4.0,
        "profile_rate": 0.002,
        "drift_release": 1.0,
        "min_std": 1e-6,
        "rel_std_floor": 0.005,
        "drift_delta": 1.0,
        "drift_threshold": 120.0,
        "n_learned": ref.n,
        "fast": ref.fast.to_state(),
        "var": ref.var.to_state(),
        "level": ref.level.to_state(),
        "ph": ref.ph.to_state(),
        "profile": list(ref.profile),
        "counts": list(ref.counts),
        "bucket_sq": list(ref.bucket_sq),
        "bucket_n": list(ref.bucket_n),
        "drifting": ref.drifting,
        "accept_ms": HOUR,
        "drift_since": ref.since,
        "shift": ref.shift.to_state(),
    }
    det = SeasonalZScore.from_state(json.loads(json.dumps(state)))
    assert det.to_state() == json.loads(json.dumps(state))
    for step, (x, ts, learn) in enumerate(series[half:]):
        assert repr(det.process(x, ts, learn)[0]) == repr(ref.process(x, ts, learn)), step


def _learned_daily_cycle() -> SeasonalZScore:
    det = SeasonalZScore(warmup=10, threshold=6.0)
    ts = 1_767_225_600_000
    for i in range(3 * 24 * 12):  # three days, every 5 minutes
        det.process(20.0 + 10 * math.sin(2 * math.pi * i / 288), ts + i * 300_000, True)
    return det


def test_a_time_that_is_not_an_int_is_refused_not_truncated() -> None:
    # the compiled entry takes an int64 time and would truncate a float silently; the
    # detector sends such a time through numba's dispatch, which refuses to type it
    det = _learned_daily_cycle()
    at = 1_767_225_600_000 + 3 * DAY + 1_234_567
    entry = k.process_entry()
    assert repr(entry(det._s.copy(), 25.0, at + 0.75, False, det.n_learned)) == repr(
        det.copy().process(25.0, at, False)[0]
    )  # what the entry alone would do
    with pytest.raises(TypingError):
        det.process(25.0, at + 0.75, False)  # type: ignore[arg-type]


def test_a_copy_is_independent_of_its_original() -> None:
    det = _learned_daily_cycle()
    before = det.to_state()
    twin = det.copy()
    assert twin.to_state() == before
    for i in range(50):
        twin.process(90.0, 1_767_225_600_000 + 4 * DAY + i * 60_000, True)
    assert det.to_state() == before
    assert twin.n_learned == det.n_learned + 50
    assert twin.to_state() != before
