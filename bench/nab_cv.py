"""``envirostream bench nab-cv``: the detection's knobs chosen by cross-validation on NAB.

A score measured on the files a configuration was chosen on flatters it: NAB's public
corpus has 58 files and the development data here holds only the 7 ``realKnownCause`` ones.
This bench chooses among a small grid of candidate configurations (:data:`GRID`, the knobs
that decide *when* a series may alert: warm-up, likelihood warm-up and threshold, the quiet
period in sampling intervals) and reports two figures side by side:

* **in-sample**: the candidate with the best pooled score on every file, scored on them;
* **leave-one-file-out (LOFO)**: for each file, the candidate is chosen on the *other* files
  and scores the held-out one; the held-out scores are pooled into one NAB score. The gap
  between the two is the optimism of tuning on what is reported.

Each file is scored whole and as **short series**: segments of 1,000, 1,500 and 2,500 rows
around each labelled window (what a new, re-installed or short-logged device has), scored
with NAB's own rules (probation 15 %, windows kept when inside the segment). A file and its
segments form one group: a held-out file's segments are never used to choose for it.
Profiles: standard, low false-positive, low false-negative (NAB's ``profiles.json``).
"""

from __future__ import annotations

import bisect
import itertools
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.nab import NabFile, load_corpus, offline_detections, resolve_nab_dir
from bench.nab_scoring import (
    STANDARD,
    CostProfile,
    FileScore,
    corpus_normalized,
    detection_rows,
    score_file,
    window_rows,
)
from core.settings import Settings

__all__ = [
    "GRID",
    "PROFILES",
    "SEGMENT_LENGTHS",
    "Candidate",
    "choose",
    "leave_one_out",
    "run_nab_cv_bench",
    "short_segments",
]

PROFILES: dict[str, CostProfile] = {
    "standard": STANDARD,
    "low_fp": CostProfile(tp_weight=1.0, fp_weight=0.22, fn_weight=1.0),
    "low_fn": CostProfile(tp_weight=1.0, fp_weight=0.11, fn_weight=2.0),
}
SEGMENT_LENGTHS = (1_000, 1_500, 2_500)

Candidate = Mapping[str, Any]
"""``DetectionConfig`` overrides of one candidate configuration."""

GRID: tuple[Candidate, ...] = (
    # the configuration before cross-validation (chosen in-sample on the 7 files)
    {"warmup": 1_440, "likelihood_warmup": 388, "likelihood_threshold": 4.0, "quiet_intervals": 0},
    *(
        {"warmup": w, "likelihood_warmup": lw, "likelihood_threshold": lt, "quiet_intervals": q}
        for w, lw, lt, q in itertools.product(
            (150, 300, 600, 1_440), (100, 200, 388), (4.0, 4.5), (12,)
        )
    ),
)


def short_segments(
    files: Sequence[NabFile], lengths: Sequence[int] = SEGMENT_LENGTHS
) -> list[NabFile]:
    """Segments of ``lengths`` rows of every file, one per labelled window: the window's
    first row at 60 % of the segment (shifted to fit the file); windows wholly inside the
    segment are kept. Lengths over 80 % of a file are skipped (that is the file).

    >>> f = NabFile("c/x.csv", Path("x.csv"), list(range(0, 5000)), [0.0] * 5000,
    ...             [(3000, 3100)])
    >>> [(len(s.timestamps), s.timestamps[0], s.windows) for s in short_segments([f], (1000,))]
    [(1000, 2400, [(3000, 3100)])]
    """
    out: list[NabFile] = []
    for f in files:
        ts = f.timestamps
        for length in lengths:
            if length >= 0.8 * len(ts):
                continue
            for start_ms, _ in f.windows:
                first = bisect.bisect_left(ts, start_ms)
                start = max(0, int(first - 0.6 * length))
                end = min(len(ts), start + length)
                start = max(0, end - length)
                lo, hi = ts[start], ts[end - 1]
                kept = [(a, b) for a, b in f.windows if a >= lo and b <= hi]
                if kept:
                    name = f"{f.name}#{length}@{start}"
                    out.append(NabFile(name, f.path, ts[start:end], f.values[start:end], kept))
    return out


@dataclass(frozen=True)
class Scored:
    """One candidate's scores of one file (per profile), and whether the file is short."""

    group: str  # the source file
    short: bool
    scores: Mapping[str, FileScore]
    length: int = 0  # rows of a short segment


def score_candidate(
    files: Sequence[tuple[NabFile, str, bool]], settings: Settings, candidate: Candidate
) -> list[Scored]:
    """Run every file through a fresh detection stage with ``candidate``; its scores."""
    out = []
    for f, group, short in files:
        detections = offline_detections(f, settings, overrides=candidate)
        rows = detection_rows(f.timestamps, detections)
        windows = window_rows(f.timestamps, f.windows)
        scores = {
            name: score_file(len(f.timestamps), windows, rows, profile)
            for name, profile in PROFILES.items()
        }
        out.append(Scored(group, short, scores, len(f.timestamps) if short else 0))
    return out


def pooled(items: Sequence[Scored], profile: str = "standard") -> float:
    """NAB's normalised score of ``items`` pooled (raw, null and perfect summed)."""
    return corpus_normalized(s.scores[profile] for s in items)


def choose(results: Sequence[Sequence[Scored]], groups: set[str]) -> int:
    """The candidate (index) with the best pooled standard score on ``groups``; the first
    (earliest in the grid) wins a tie.

    >>> a = Scored("f", False, {"standard": FileScore(1.0, -1.0, 1.0, 1, 0, 0, 1)})
    >>> b = Scored("f", False, {"standard": FileScore(0.0, -1.0, 1.0, 0, 1, 0, 1)})
    >>> choose([[b], [a]], {"f"})
    1
    """
    best, best_score = 0, -float("inf")
    for k, scored in enumerate(results):
        score = pooled([s for s in scored if s.group in groups])
        if score > best_score:
            best, best_score = k, score
    return best


def leave_one_out(results: Sequence[Sequence[Scored]]) -> tuple[list[Scored], dict[str, int]]:
    """For every group: the candidate chosen on the other groups, and the held-out group's
    scores under it. Returns the held-out scores (pooled by the caller) and the choices."""
    groups = sorted({s.group for s in results[0]})
    held: list[Scored] = []
    chosen: dict[str, int] = {}
    for g in groups:
        k = choose(results, set(groups) - {g})
        chosen[g] = k
        held.extend(s for s in results[k] if s.group == g)
    return held, chosen


def _figures(items: Sequence[Scored]) -> dict[str, Any]:
    full = [s for s in items if not s.short]
    short = [s for s in items if s.short]
    out: dict[str, Any] = {}
    for profile in PROFILES:
        out[profile] = round(pooled(full, profile), 2)
        out[f"{profile}_short"] = round(pooled(short, profile), 2)
    for length in SEGMENT_LENGTHS:
        of_length = [s for s in short if s.length == length]
        out[f"standard_{length}_rows"] = round(pooled(of_length), 2)
    out["fp"] = sum(s.scores["standard"].fp for s in full)
    out["fp_short"] = sum(s.scores["standard"].fp for s in short)
    out["windows_found"] = sum(s.scores["standard"].tp_windows for s in full)
    out["windows"] = sum(s.scores["standard"].scored_windows for s in full)
    return out


def run_nab_cv_bench(settings: Settings, *, nab_dir: str | Path | None = None) -> dict[str, Any]:
    """Score every candidate of :data:`GRID` on NAB realKnownCause (whole files and short
    segments); report the in-sample choice beside the leave-one-file-out figures."""
    root = resolve_nab_dir(nab_dir, settings)
    files = load_corpus(root)
    segments = short_segments(files)
    tagged = [(f, f.name, False) for f in files] + [
        (s, s.name.split("#", 1)[0], True) for s in segments
    ]
    print(
        f"bench nab-cv: {len(files)} files + {len(segments)} short segments "
        f"({'/'.join(map(str, SEGMENT_LENGTHS))} rows), {len(GRID)} candidates, from {root}",
        flush=True,
    )
    t0 = time.perf_counter()
    results = []
    for k, cand in enumerate(GRID):
        results.append(score_candidate(tagged, settings, cand))
        fig = _figures(results[-1])
        print(
            f"  [{k:2d}] {json.dumps(dict(cand))}: standard {fig['standard']:6.1f}  "
            f"short {fig['standard_short']:6.1f}  fp {fig['fp']}",
            flush=True,
        )
    all_groups = {s.group for s in results[0]}
    best = choose(results, all_groups)
    held, chosen = leave_one_out(results)
    in_sample, lofo = _figures(results[best]), _figures(held)
    previous = _figures(results[0])
    print(f"chosen on all files: [{best}] {json.dumps(dict(GRID[best]))}")
    lengths = ", ".join(f"{n:,} rows {lofo[f'standard_{n}_rows']:.1f}" for n in SEGMENT_LENGTHS)
    print(f"short series, LOFO standard score by length: {lengths}")
    print(f"{'':24}{'standard':>9}{'low FP':>8}{'low FN':>8}{'short std':>10}{'FP':>5}")
    for label, fig in (("before (grid [0])", previous), ("in-sample", in_sample), ("LOFO", lofo)):
        print(
            f"{label:24}{fig['standard']:9.1f}{fig['low_fp']:8.1f}{fig['low_fn']:8.1f}"
            f"{fig['standard_short']:10.1f}{fig['fp']:5d}"
        )
    out = {
        "bench": "nab-cv",
        "chosen": dict(GRID[best]),
        "before": previous,
        "in_sample": in_sample,
        "lofo": lofo,
        "lofo_choices": {Path(g).stem: k for g, k in chosen.items()},
        "candidates": len(GRID),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out))
    return out
