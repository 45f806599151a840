"""``envirostream bench skab --lofo``: choose the joint-state parameters by cross-validation.

Every candidate of :data:`GRID` (``DetectionConfig`` overrides of the joint-state signal) is
run offline over the valve1 files (the whole stage, the chosen protocol); each file's
point-wise counts are kept. **In-sample**: the candidate with the best F1 over all files,
scored on all of them. **Leave-one-file-out** (LOFO): for each file, the candidate with the
best F1 over the *other* files is chosen and scored on that file alone; the held-out counts
are summed. The detection learns online in both; only the choice of parameters sees labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bench.skab_scoring import BinaryCounts

__all__ = ["GRID", "best_candidate", "leave_one_file_out"]

GRID: tuple[dict[str, Any], ...] = tuple(
    {"joint_threshold": th, "joint_smooth": sm} for th in (0.75, 1.0, 1.5, 2.0) for sm in (10, 30)
)
"""The candidates: joint threshold x smoothing (rows)."""

PerFile = Mapping[str, BinaryCounts]  # file name -> its counts under one candidate


def _sum(counts: PerFile, files: Sequence[str]) -> BinaryCounts:
    total = BinaryCounts()
    for name in files:
        total += counts[name]
    return total


def best_candidate(results: Sequence[PerFile], files: Sequence[str]) -> int:
    """The index of the candidate with the best F1 summed over ``files`` (first on ties).

    >>> a = {"x": BinaryCounts(tp=1, fn=1), "y": BinaryCounts(tp=1, fp=3)}
    >>> b = {"x": BinaryCounts(tp=2), "y": BinaryCounts(fn=1)}
    >>> best_candidate([a, b], ["x"]), best_candidate([a, b], ["y"])
    (1, 0)
    """
    scores = [_sum(r, files).f1 for r in results]
    return max(range(len(results)), key=lambda i: (scores[i], -i))


def leave_one_file_out(
    results: Sequence[PerFile], files: Sequence[str]
) -> tuple[BinaryCounts, dict[str, int]]:
    """Held-out counts summed over files, and the candidate chosen for each file.

    >>> a = {"x": BinaryCounts(tp=1, fn=1), "y": BinaryCounts(tp=1, fp=3)}
    >>> b = {"x": BinaryCounts(tp=2), "y": BinaryCounts(fn=1)}
    >>> total, chosen = leave_one_file_out([a, b], ["x", "y"])
    >>> chosen, (total.tp, total.fp, total.fn)
    ({'x': 0, 'y': 1}, (1, 0, 2))
    """
    total = BinaryCounts()
    chosen: dict[str, int] = {}
    for name in files:
        others = [f for f in files if f != name]
        k = best_candidate(results, others)
        chosen[name] = k
        total += results[k][name]
    return total, chosen
