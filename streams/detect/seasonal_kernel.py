"""The arithmetic of :class:`~streams.detect.univariate.SeasonalZScore`, compiled.

A series' whole state is one float64 array (the layout below); the functions here read and
update it with numba, one call per reading instead of some forty Python statements. They
are the same operations in the same order as the Python they replaced (the statistics of
:mod:`streams.detect.moments` written out: ``EWMean``, ``EWVar``, ``PageHinkley``), so a
series' scores and state are the same bit for bit (``tests/unit/streams/
test_seasonal_kernel.py`` runs a reference written in Python beside them). Counts and
epoch milliseconds are held as float64, exact below 2**53.

``n`` (the number of readings learned) is passed in by the caller, which keeps it as a
Python integer: every signal reads it, and a Python attribute is cheaper to read.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
from numba import njit, types

__all__ = [
    "BUCKETS",
    "LAYOUT_SIZE",
    "MIN_BUCKET",
    "baseline",
    "compile_all",
    "deviation",
    "learn",
    "new_state",
    "process",
    "process_entry",
    "reset_drift_test",
    "score",
    "spread",
    "z",
]

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
BUCKETS = 24
MIN_BUCKET = 2  # readings an hour's bucket needs before the profile is trusted there
PH_ALPHA = 1 - 0.0001  # PageHinkley's default forgetting factor
PH_MIN_INSTANCES = 30

# -- the layout of a state array -------------------------------------------------------
WARMUP, THRESHOLD, CLIP, PROFILE_RATE, DRIFT_RELEASE, MIN_STD, REL_STD_FLOOR = range(7)
DRIFTING, ACCEPT_MS, DRIFT_SINCE, DRIFT_DELTA, DRIFT_THRESHOLD = range(7, 12)
# an exponentially weighted mean: (fading factor, mean, started)
FAST, VAR_X, VAR_SQ, LEVEL, SHIFT = 12, 15, 18, 21, 24
# the Page-Hinkley test
PH = 27
PH_MIN, PH_DELTA, PH_THRESHOLD, PH_ALPHA_AT, PH_DETECTED = PH, PH + 1, PH + 2, PH + 3, PH + 4
PH_N, PH_MEAN, PH_SUM_INC, PH_SUM_DEC, PH_MIN_INC, PH_MAX_DEC = range(PH + 5, PH + 11)
PROFILE = 40
COUNTS = PROFILE + BUCKETS
BUCKET_SQ = COUNTS + BUCKETS
BUCKET_N = BUCKET_SQ + BUCKETS
LAYOUT_SIZE = BUCKET_N + BUCKETS


def new_state(params: tuple[tuple[int, float], ...]) -> np.ndarray:
    """A fresh state array with the parameters ``params`` ((index, value) pairs) set."""
    return _template(params).copy()


@functools.lru_cache(maxsize=64)
def _template(params: tuple[tuple[int, float], ...]) -> np.ndarray:
    """The fresh state of ``params``, built once: a fleet's series share their parameters."""
    s = np.zeros(LAYOUT_SIZE)
    for at, value in params:
        s[at] = value
    reset_drift_test(s)
    s.flags.writeable = False
    return s


@njit(cache=True)
def _ew(s: np.ndarray, at: int, x: float) -> None:
    """``EWMean.update`` of the mean at ``at``."""
    if s[at + 2] != 0.0:
        a = s[at]
        s[at + 1] = a * x + (1.0 - a) * s[at + 1]
    else:
        s[at + 1] = x
        s[at + 2] = 1.0


@njit(cache=True)
def _ew_restart(s: np.ndarray, at: int) -> None:
    """A new ``EWMean`` with the fading factor of the one at ``at``."""
    s[at + 1] = 0.0
    s[at + 2] = 0.0


@njit(cache=True)
def _ph_clear(s: np.ndarray) -> None:
    s[PH_DETECTED] = 0.0
    s[PH_N] = 0.0
    s[PH_MEAN] = 0.0
    s[PH_SUM_INC] = 0.0
    s[PH_SUM_DEC] = 0.0
    s[PH_MIN_INC] = math.inf
    s[PH_MAX_DEC] = -1.0


@njit(cache=True)
def reset_drift_test(s: np.ndarray) -> None:
    """A new Page-Hinkley test with the detector's drift parameters."""
    s[PH_MIN] = PH_MIN_INSTANCES
    s[PH_DELTA] = s[DRIFT_DELTA]
    s[PH_THRESHOLD] = s[DRIFT_THRESHOLD]
    s[PH_ALPHA_AT] = PH_ALPHA
    _ph_clear(s)


@njit(cache=True)
def _ph(s: np.ndarray, x: float) -> None:
    """``PageHinkley.update``."""
    if s[PH_DETECTED] != 0.0:
        _ph_clear(s)
    n = s[PH_N] + 1.0
    s[PH_N] = n
    mean = s[PH_MEAN] + (1.0 / n) * (x - s[PH_MEAN])
    s[PH_MEAN] = mean
    dev = x - mean
    alpha = s[PH_ALPHA_AT]
    inc = alpha * s[PH_SUM_INC] + dev - s[PH_DELTA]
    s[PH_SUM_INC] = inc
    dec = alpha * s[PH_SUM_DEC] + dev + s[PH_DELTA]
    s[PH_SUM_DEC] = dec
    if inc < s[PH_MIN_INC]:
        s[PH_MIN_INC] = inc
    if dec > s[PH_MAX_DEC]:
        s[PH_MAX_DEC] = dec
    if n >= s[PH_MIN]:
        threshold = s[PH_THRESHOLD]
        hit = inc - s[PH_MIN_INC] > threshold or s[PH_MAX_DEC] - dec > threshold
        s[PH_DETECTED] = 1.0 if hit else 0.0


@njit(cache=True)
def _position(ts: int) -> tuple[int, int, int, float]:
    """``(hour, i0, i1, frac)``: the hour's bucket, and the two buckets the baseline
    interpolates between (bucket i is centred at i + 0.5 hours)."""
    t = ts % DAY_MS
    pos = t / HOUR_MS - 0.5
    lo = math.floor(pos)
    return t // HOUR_MS, lo % BUCKETS, (lo + 1) % BUCKETS, pos - lo


@njit(cache=True)
def _base(s: np.ndarray, n: int, i0: int, i1: int, frac: float) -> float:
    if s[COUNTS + i0] >= MIN_BUCKET and s[COUNTS + i1] >= MIN_BUCKET:
        return s[PROFILE + i0] * (1.0 - frac) + s[PROFILE + i1] * frac
    return s[FAST + 1] if n else 0.0


@njit(cache=True)
def _floored(s: np.ndarray, var: float, base: float) -> float:
    """``max(sqrt(var), min_std, rel_std_floor * |base|)`` (``var`` >= 0 or NaN)."""
    std = math.sqrt(var)
    if s[MIN_STD] > std:
        std = s[MIN_STD]
    floor = s[REL_STD_FLOOR] * abs(base)
    if floor > std:
        std = floor
    return std


@njit(cache=True)
def _frame(s: np.ndarray, ts: int, n: int) -> tuple[float, float, int, int, int]:
    """``(baseline, std, hour, i0, i1)`` at ``ts``: the score and the learning share them."""
    i, i0, i1, frac = _position(ts)
    base = _base(s, n, i0, i1, frac)
    m = s[VAR_X + 1]
    var = s[VAR_SQ + 1] - m * m
    if s[BUCKET_N + i] >= MIN_BUCKET:
        bucket = s[BUCKET_SQ + i]
        if bucket > var:
            var = bucket
    if var < 0.0:
        var = 0.0
    return base, _floored(s, var, base), i, i0, i1


@njit(cache=True)
def _score_at(s: np.ndarray, x: float, base: float, std: float, n: int) -> float:
    if n >= 2:
        z = abs((x - base) / std)
        # far from the daily profile *and* from the recent level
        recent = abs(x - s[FAST + 1]) / std
        if recent < z:
            z = recent
    else:
        z = 0.0
    if s[DRIFTING] != 0.0 and s[THRESHOLD] > z:
        return s[THRESHOLD]
    return z


@njit(cache=True)
def _learn_at(
    s: np.ndarray, x: float, ts: int, n: int, base: float, std: float, i: int, i0: int, i1: int
) -> None:
    z = (x - base) / std if n >= 2 else 0.0
    clip = s[CLIP]
    zc = z if z < clip else clip  # max(-clip, min(clip, z)), NaN included
    if not zc > -clip:
        zc = -clip
    # winsorised once warm: an outlier moves the baseline by at most ``clip`` std
    xw = base + zc * std if n >= s[WARMUP] else x
    _ew(s, FAST, xw)
    r = xw - base if n >= 2 else 0.0
    _ew(s, VAR_X, r)
    _ew(s, VAR_SQ, r * r)
    c = s[COUNTS + i] + 1.0
    s[COUNTS + i] = c
    prate = s[PROFILE_RATE]
    rate = 1.0 / c
    if prate > rate:
        rate = prate
    s[PROFILE + i] += rate * (xw - s[PROFILE + i])
    if s[COUNTS + i0] >= MIN_BUCKET and s[COUNTS + i1] >= MIN_BUCKET:
        # the spread usual at this hour, around the profile (not around the fast mean used
        # before the profile covers the hour: its lag is not the series' spread)
        nb = s[BUCKET_N + i] + 1.0
        s[BUCKET_N + i] = nb
        brate = 1.0 / nb
        if prate > brate:
            brate = prate
        e = xw - base
        s[BUCKET_SQ + i] += brate * (e * e - s[BUCKET_SQ + i])
    _ew(s, LEVEL, zc)
    if n + 1 == s[WARMUP]:
        reset_drift_test(s)  # what it summed while the profile was immature is no evidence
    _ph(s, zc)
    drifting = s[DRIFTING] != 0.0
    if drifting:
        _ew(s, SHIFT, x - base)
    if s[PH_DETECTED] != 0.0 and n >= s[WARMUP] and not drifting:
        s[DRIFTING] = 1.0
        s[DRIFT_SINCE] = ts
        _ew_restart(s, SHIFT)
        _ew(s, SHIFT, x - base)
    elif drifting and abs(s[LEVEL + 1]) < s[DRIFT_RELEASE]:
        s[DRIFTING] = 0.0
    elif drifting and s[ACCEPT_MS] != 0.0 and ts - s[DRIFT_SINCE] >= s[ACCEPT_MS]:
        # the drift lasted accept_ms: the new normal; the profile moves by the residual
        # seen while drifting and the drift test starts over
        shift = s[SHIFT + 1]
        for b in range(BUCKETS):
            s[PROFILE + b] = s[PROFILE + b] + shift
        _ew_restart(s, LEVEL)
        reset_drift_test(s)
        s[DRIFTING] = 0.0


@njit(cache=True)
def process(s: np.ndarray, x: float, ts: int, learn: bool, n: int) -> float:
    """Score the finite ``x`` at ``ts``, then learn it when ``learn``; returns the score."""
    base, std, i, i0, i1 = _frame(s, ts, n)
    out = _score_at(s, x, base, std, n)
    if learn:
        _learn_at(s, x, ts, n, base, std, i, i0, i1)
    return out


@njit(cache=True)
def score(s: np.ndarray, x: float, ts: int, n: int) -> float:
    """The score of the finite ``x`` at ``ts``; the state is not changed."""
    base, std, _, _, _ = _frame(s, ts, n)
    return _score_at(s, x, base, std, n)


@njit(cache=True)
def learn(s: np.ndarray, x: float, ts: int, n: int) -> None:
    """Learn the finite ``x`` at ``ts`` (the ``n``-th reading learned, from 0)."""
    base, std, i, i0, i1 = _frame(s, ts, n)
    _learn_at(s, x, ts, n, base, std, i, i0, i1)


@njit(cache=True)
def baseline(s: np.ndarray, ts: int, n: int) -> float:
    """The daily profile at ``ts``, or the recent level before it covers the hour."""
    _, i0, i1, frac = _position(ts)
    return _base(s, n, i0, i1, frac)


@njit(cache=True)
def z(s: np.ndarray, x: float, ts: int) -> float:
    """``(x - baseline) / std`` at ``ts`` (``n`` >= 2, ``x`` finite)."""
    base, std, _, _, _ = _frame(s, ts, 2)
    return (x - base) / std


@njit(cache=True)
def deviation(s: np.ndarray, x: float, ts: int) -> float:
    """``x``'s distance from the profile at ``ts`` in the spread usual at that hour."""
    i, i0, i1, frac = _position(ts)
    base = _base(s, 2, i0, i1, frac)
    if s[BUCKET_N + i] >= MIN_BUCKET:
        var = s[BUCKET_SQ + i]
    else:
        m = s[VAR_X + 1]
        var = s[VAR_SQ + 1] - m * m
    if var < 0.0:
        var = 0.0
    return (x - base) / _floored(s, var, base)


@njit(cache=True)
def spread(s: np.ndarray, n: int) -> float:
    """The mean of the hourly spreads learned (the recent one before any), floored."""
    total = 0.0
    k = 0
    for b in range(BUCKETS):
        if s[BUCKET_N + b] >= MIN_BUCKET:
            total += s[BUCKET_SQ + b]
            k += 1
    if k:
        var = total / k
    else:
        m = s[VAR_X + 1]
        var = s[VAR_SQ + 1] - m * m
        if var < 0.0:
            var = 0.0
    level = abs(s[FAST + 1]) if n else 0.0
    return _floored(s, var, level)


_PROCESS_ARGS = (types.float64[::1], types.float64, types.int64, types.boolean, types.int64)


@functools.cache
def process_entry() -> Callable[[np.ndarray, float, int, bool, int], float]:
    """:func:`process` compiled for its one signature, called without numba's dispatch.

    The dispatcher types every argument of every call (about 0.3 µs of a call's 0.5).
    The entry converts what it is given to the signature's types silently (a float time
    would be truncated), so the caller passes exactly a C-contiguous float64 array, a
    float, an int, a bool and an int. Loaded from numba's cache on first use (~0.4 s).
    """
    compile_for = getattr(process, "compile", None)  # absent with NUMBA_DISABLE_JIT=1
    return process if compile_for is None else compile_for(_PROCESS_ARGS)


def compile_all() -> None:
    """Compile every kernel now (numba keeps them in its cache, next to this file or in
    ``NUMBA_CACHE_DIR``): the setup runs it once, so no process pays it at its first reading."""
    s = new_state(((WARMUP, 1), (THRESHOLD, 6.0), (CLIP, 4.0), (MIN_STD, 1e-6), (FAST, 0.05)))
    process(s, 1.0, 0, True, 0)
    process_entry()
    learn(s, 1.0, 60_000, 1)
    score(s, 1.0, 120_000, 2)
    baseline(s, 120_000, 2)
    z(s, 1.0, 120_000)
    deviation(s, 1.0, 120_000)
    spread(s, 2)
