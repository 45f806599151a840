"""NAB's scoring (``nab/sweeper.py``, standard profile) of one file's detections.

Rows before the probationary period (15 % of the file, at most 750 rows) are ignored; the
first detection in a window earns ``A_TP * S(pos)/S(-1)`` with ``S`` the scaled sigmoid of
the relative position in the window (1.0 at the window's start); a window without detection
costs ``A_FN``; every detection outside windows costs ``|A_FP| * S(pos)`` by its distance
past the preceding window (``A_FP`` if there is none). The corpus score is normalised as NAB
does: ``100 * (raw - null) / (perfect - null)`` with ``null`` the detector that never fires
and ``perfect`` one detection at every window start. ``bench nab`` and ``bench nab-cv`` use it.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "PROBATION_PERCENT",
    "STANDARD",
    "CostProfile",
    "FileScore",
    "WindowMetrics",
    "corpus_normalized",
    "detection_rows",
    "probation_length",
    "scaled_sigmoid",
    "score_file",
    "window_metrics",
    "window_rows",
]

PROBATION_PERCENT = 0.15
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class CostProfile:
    """NAB's cost matrix (``config/profiles.json``); weights are magnitudes.

    The standard profile is A_TP = 1.0, A_FP = -0.11, A_FN = -1.0 (TN unused).
    """

    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0


STANDARD = CostProfile()


def scaled_sigmoid(position: float) -> float:
    """NAB's ``scaledSigmoid``: 2*sigmoid(-5*position) - 1, and -1.0 from position 3 on."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start whose detections are ignored: min(floor(p*rows), p*5000)."""
    return min(math.floor(percent * rows), math.ceil(percent * 5000))


def window_rows(
    timestamps: Sequence[int], windows: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Each window as (first row, last row) inclusive; windows holding no row are dropped."""
    out = []
    for start, end in windows:
        left = bisect.bisect_left(timestamps, start)
        right = bisect.bisect_right(timestamps, end) - 1
        if left <= right:
            out.append((left, right))
    return out


def detection_rows(timestamps: Sequence[int], detections_ms: Iterable[int]) -> list[int]:
    """The rows detections fall on (the last row at or before each), distinct and sorted.

    NAB's detections are per row, so two detections on one row count once. (Two NAB files
    step back one hour at a DST change; there the row found is approximate.)
    """
    rows = set()
    for t in detections_ms:
        i = bisect.bisect_right(timestamps, t) - 1
        if i >= 0:
            rows.add(i)
    return sorted(rows)


@dataclass(frozen=True)
class FileScore:
    raw: float
    null: float  # the detector that never fires
    perfect: float  # one detection at every window's first row
    tp_windows: int
    fn_windows: int
    fp: int  # scored detections outside every window
    scored_windows: int  # windows not entirely inside the probationary period


def score_file(
    rows: int,
    windows: Sequence[tuple[int, int]],
    detections: Iterable[int],
    profile: CostProfile = STANDARD,
    probation_percent: float = PROBATION_PERCENT,
) -> FileScore:
    """NAB's score of one file from row indices: ``windows`` (sorted, inclusive) and
    ``detections`` (rows where the detector fired)."""
    probation = probation_length(rows, probation_percent)
    max_tp = scaled_sigmoid(-1.0)
    det = sorted({d for d in detections if probation <= d < rows})
    # A window takes part if one of its rows is past the probationary period.
    best: dict[int, float] = {
        k: -profile.fn_weight for k, (_, right) in enumerate(windows) if right >= probation
    }
    fp_score, fp = 0.0, 0
    rights = [r for _, r in windows]
    for i in det:
        k = bisect.bisect_right(rights, i - 1)  # first window whose last row is >= i
        if k < len(windows) and windows[k][0] <= i:
            left, right = windows[k]
            width = right - left + 1
            tp = scaled_sigmoid(-(right - i + 1) / width) * profile.tp_weight / max_tp
            best[k] = max(best[k], tp)
            continue
        fp += 1
        if k == 0:
            position = 3.0  # no preceding window: full cost
        else:
            left, right = windows[k - 1]
            width = right - left + 1
            # NAB divides by (width - 1); a one-row window would divide by zero there.
            position = abs(right - i) / (width - 1) if width > 1 else 3.0
        fp_score += scaled_sigmoid(position) * profile.fp_weight
    tp_windows = sum(1 for v in best.values() if v != -profile.fn_weight)
    return FileScore(
        raw=sum(best.values()) + fp_score,
        null=-profile.fn_weight * len(best),
        perfect=profile.tp_weight * len(windows),
        tp_windows=tp_windows,
        fn_windows=len(best) - tp_windows,
        fp=fp,
        scored_windows=len(best),
    )


def corpus_normalized(scores: Iterable[FileScore]) -> float:
    """NAB's normalised corpus score: 100 * (raw - null) / (perfect - null), over all files.

    As in NAB's ``runner.normalize``, perfect counts every labelled window once at A_TP.
    """
    items = list(scores)
    raw = sum(s.raw for s in items)
    null = sum(s.null for s in items)
    perfect = sum(s.perfect for s in items)
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class WindowMetrics:
    detections: int  # distinct detection rows after the probationary period
    in_window: int
    precision: float | None  # in_window / detections
    detected_windows: int
    recall: float | None  # detected_windows / windows
    delays_ms: list[int]  # first detection - window start, per detected window

    @property
    def median_delay_hours(self) -> float | None:
        return statistics.median(self.delays_ms) / HOUR_MS if self.delays_ms else None


def window_metrics(
    timestamps: Sequence[int],
    windows: Sequence[tuple[int, int]],
    detections: Iterable[int],
    probation_percent: float = PROBATION_PERCENT,
) -> WindowMetrics:
    """Window precision and recall and detection delay; ``windows``/``detections`` are rows."""
    probation = probation_length(len(timestamps), probation_percent)
    det = sorted({d for d in detections if probation <= d < len(timestamps)})
    first: dict[int, int] = {}
    in_window = 0
    for i in det:
        for k, (left, right) in enumerate(windows):
            if left <= i <= right:
                in_window += 1
                first.setdefault(k, i)
                break
    delays = [timestamps[i] - timestamps[windows[k][0]] for k, i in sorted(first.items())]
    return WindowMetrics(
        detections=len(det),
        in_window=in_window,
        precision=in_window / len(det) if det else None,
        detected_windows=len(first),
        recall=len(first) / len(windows) if windows else None,
        delays_ms=delays,
    )
