"""SKAB's metrics: point-wise F1 / false-alarm / missing-alarm rates and NAB changepoint scores.

Written from SKAB's evaluator (``core/metrics.py`` of waico/SKAB, ``chp_score``) as its
README uses it:

* **binary** (outlier detection): every row of every file counts once. ``F1 = TP / (TP +
  (FP + FN) / 2)``, ``FAR = FP / (FP + TN)`` and ``MAR = FN / (FN + TP)`` (both in %).
  Our prediction for a row is 1 while an alert of the device is active: from its first to
  its last evidence (``first_seen`` .. ``last_seen``, both included).
* **NAB** (changepoint detection): a predicted changepoint is a row where the prediction
  changes (``|diff|``; the first row counts if it is 1). Each true changepoint opens a
  scoring window of 60 s to its right (``window_width="60s"``,
  ``anomaly_window_destination="righter"``; an overlap cuts the right window's start). The
  first predicted changepoint inside a window (bounds included) scores by SKAB's
  "improved" scale, ``A_fp + (A_tp - A_fp)/2 * (1 - tanh(x)/tanh(pi/2))`` with ``x`` the
  detection's place in the window mapped onto ``[-pi/2, pi/2]`` on a 1000-point grid; a
  window without one costs ``A_fn``; every predicted changepoint outside all windows costs
  ``A_fp``. Files are summed, then ``100 * (score - null) / (perfect - null)``, with
  ``null = windows * A_fn`` and ``perfect = windows * A_tp``, for the profiles Standard
  (1, -0.11, -1), LowFP (1, -0.22, -1) and LowFN (1, -0.11, -2) of ``(A_tp, A_fp, A_fn)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "NAB_PROFILES",
    "BinaryCounts",
    "NabFileScore",
    "active_mask",
    "binary_counts",
    "nab_file_score",
    "nab_scores",
    "predicted_changepoints",
    "scale_score",
]

NAB_PROFILES: dict[str, tuple[float, float, float]] = {
    "standard": (1.0, -0.11, -1.0),
    "low_fp": (1.0, -0.22, -1.0),
    "low_fn": (1.0, -0.11, -2.0),
}
"""``(A_tp, A_fp, A_fn)`` of SKAB's NAB profiles."""

_DETAIL = 1000


@dataclass
class BinaryCounts:
    """Point-wise confusion counts, summed over files."""

    tp: int = 0
    tn: int = 0
    fp: int = 0
    fn: int = 0

    def __iadd__(self, other: BinaryCounts) -> BinaryCounts:
        self.tp += other.tp
        self.tn += other.tn
        self.fp += other.fp
        self.fn += other.fn
        return self

    @property
    def f1(self) -> float:
        """``TP / (TP + (FP + FN) / 2)`` (0 when there is nothing at all).

        >>> BinaryCounts(tp=3, tn=5, fp=1, fn=1).f1
        0.75
        """
        denominator = self.tp + (self.fp + self.fn) / 2
        return self.tp / denominator if denominator else 0.0

    @property
    def far(self) -> float:
        """False alarm rate, %: ``FP / (FP + TN)``."""
        n = self.fp + self.tn
        return 100.0 * self.fp / n if n else 0.0

    @property
    def mar(self) -> float:
        """Missing alarm rate, %: ``FN / (FN + TP)``."""
        n = self.fn + self.tp
        return 100.0 * self.fn / n if n else 0.0


def active_mask(timestamps: Sequence[int], intervals: Iterable[tuple[int, int]]) -> list[int]:
    """1 for each row whose time lies in one of the ``(first, last)`` intervals (inclusive).

    >>> active_mask([0, 1, 2, 3, 4, 5], [(1, 2), (4, 4)])
    [0, 1, 1, 0, 1, 0]
    """
    mask = [0] * len(timestamps)
    for first, last in intervals:
        for i, ts in enumerate(timestamps):
            if first <= ts <= last:
                mask[i] = 1
    return mask


def binary_counts(labels: Sequence[int], predicted: Sequence[int]) -> BinaryCounts:
    """The confusion counts of one file (``labels`` and ``predicted`` are 0/1 per row)."""
    if len(labels) != len(predicted):
        msg = f"labels ({len(labels)}) and predictions ({len(predicted)}) differ in length"
        raise ValueError(msg)
    c = BinaryCounts()
    for y, p in zip(labels, predicted, strict=True):
        if y and p:
            c.tp += 1
        elif y:
            c.fn += 1
        elif p:
            c.fp += 1
        else:
            c.tn += 1
    return c


def predicted_changepoints(predicted: Sequence[int]) -> list[int]:
    """Rows where the prediction changes, as SKAB derives them (``|diff|``, row 0 = itself).

    >>> predicted_changepoints([0, 1, 1, 0, 0, 1])
    [0, 1, 0, 1, 0, 1]
    """
    return (
        [int(predicted[0])]
        + [int(predicted[i] != predicted[i - 1]) for i in range(1, len(predicted))]
        if predicted
        else []
    )


def scale_score(position: float, a_tp: float, a_fp: float) -> float:
    """SKAB's "improved" scale at ``position`` in ``[0, 1]`` of the window (koef 1).

    >>> round(scale_score(0.0, 1.0, -0.11), 6), round(scale_score(1.0, 1.0, -0.11), 6)
    (1.0, -0.11)
    """
    event = min(int(position * _DETAIL), _DETAIL - 1)
    x = -math.pi / 2 + math.pi * event / (_DETAIL - 1)
    half = (a_tp - a_fp) / 2
    return half * -math.tanh(x) / math.tanh(math.pi / 2) + half + a_fp


@dataclass
class NabFileScore:
    """One file's NAB sums per profile, and what they were made of."""

    score: dict[str, float]
    windows: int
    detected: int
    false_positives: int


def nab_file_score(
    timestamps: Sequence[int],
    true_cp: Sequence[int],
    predicted_cp: Sequence[int],
    window_ms: int = 60_000,
) -> NabFileScore:
    """The NAB sums of one file (``true_cp``/``predicted_cp`` are 0/1 per row)."""
    windows = [[t, t + window_ms] for t, c in zip(timestamps, true_cp, strict=True) if c]
    for i in range(len(windows) - 1):  # "cut right window"
        if windows[i][1] >= windows[i + 1][0]:
            windows[i + 1][0] = windows[i][1]
    preds = sorted(t for t, c in zip(timestamps, predicted_cp, strict=True) if c)
    firsts: list[int | None] = []
    for start, end in windows:
        inside = [t for t in preds if start <= t <= end]
        firsts.append(inside[0] if inside else None)
    outside = sum(not _in_windows(t, windows) for t in preds)
    score: dict[str, float] = {}
    for profile, (a_tp, a_fp, a_fn) in NAB_PROFILES.items():
        s = a_fp * outside
        for (start, end), first in zip(windows, firsts, strict=True):
            if first is None:
                s += a_fn
            else:
                position = (first - start) / (end - start) if end > start else 0.0
                s += scale_score(position, a_tp, a_fp)
        score[profile] = s
    detected = sum(f is not None for f in firsts)
    return NabFileScore(score, len(windows), detected, outside)


def _in_windows(t: int, windows: Sequence[Sequence[int]]) -> bool:
    """Whether ``t`` is not a false positive: within the span of the windows and not in a
    gap between two of them (SKAB's left, between and right FP ranges)."""
    if not windows or t < windows[0][0] or t > windows[-1][1]:
        return False
    return not any(windows[i][1] < t < windows[i + 1][0] for i in range(len(windows) - 1))


def nab_scores(files: Iterable[NabFileScore]) -> dict[str, float]:
    """The normalised NAB score per profile over ``files`` (100 = perfect, 0 = null)."""
    files = list(files)
    windows = sum(f.windows for f in files)
    out: dict[str, float] = {}
    for profile, (a_tp, _a_fp, a_fn) in NAB_PROFILES.items():
        total = sum(f.score[profile] for f in files)
        null, perfect = windows * a_fn, windows * a_tp
        out[profile] = 100.0 * (total - null) / (perfect - null) if perfect != null else 0.0
    return out
