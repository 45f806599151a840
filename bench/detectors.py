"""Detector cost: microseconds per input of each detector in ``streams.detect``.

Pure CPU timing, no broker: a seeded synthetic series (daily cycle + noise, 1 reading per
minute) through ``process_one`` (score then learn), as the worker would call it. Not a unit
test; run ``python -m bench.detectors [--readings N]``. The last line is JSON.
Not yet wired into ``envirostream bench`` (``envirostream/cli.py`` is owned elsewhere).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable
from typing import Any

from streams.detect import (
    Detector,
    SeasonalZScore,
    TimeToLimit,
    WindowHST,
    WindowMahalanobis,
    check_limits,
)

_DAY_MS = 86_400_000
_MIN_MS = 60_000


def _scalars(n: int, seed: int) -> list[tuple[float, int]]:
    rng = random.Random(seed)
    return [
        (20.0 + 5.0 * math.sin(2 * math.pi * i * _MIN_MS / _DAY_MS) + rng.gauss(0, 0.3), i)
        for i in range(n)
    ]


def _windows(n: int, seed: int) -> list[tuple[dict[str, float], int]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        load = rng.gauss(0.0, 1.0)
        features = {
            "BEARING_TEMPERATURE.mean": 50.0 + 3.0 * load + rng.gauss(0.0, 0.5),
            "BEARING_TEMPERATURE.std": abs(rng.gauss(0.3, 0.05)),
            "VIBRATION.mean": 2.0 + 0.4 * load + rng.gauss(0.0, 0.07),
            "VIBRATION.std": abs(rng.gauss(0.1, 0.02)),
        }
        out.append((features, i))
    return out


def time_per_input_us(det: Detector[Any], inputs: list[tuple[Any, int]]) -> float:
    """Mean wall time of ``process_one`` per input, in microseconds."""
    start = time.perf_counter()
    for x, i in inputs:
        det.process_one(x, i * _MIN_MS)
    return (time.perf_counter() - start) / len(inputs) * 1e6


def time_rule_us(inputs: list[tuple[float, int]]) -> float:
    """Mean wall time of one safety-limit check per reading, in microseconds."""
    start = time.perf_counter()
    for x, _ in inputs:
        check_limits("BATTERY_PACK", "CELL_TEMPERATURE", x)
    return (time.perf_counter() - start) / len(inputs) * 1e6


def run(readings: int, windows: int, seed: int = 7) -> dict[str, float]:
    scalars = _scalars(readings, seed)
    wins = _windows(windows, seed)
    cases: dict[str, tuple[Callable[[], Detector[Any]], list[Any]]] = {
        "seasonal_zscore_us_per_reading": (SeasonalZScore, scalars),
        "time_to_limit_us_per_call": (lambda: TimeToLimit(limit=60.0), scalars[:windows]),
        "window_mahalanobis_us_per_window": (WindowMahalanobis, wins),
        "window_hst_us_per_window": (WindowHST, wins),
    }
    figures = {
        name: round(time_per_input_us(make(), data), 2) for name, (make, data) in cases.items()
    }
    figures["safety_limit_us_per_reading"] = round(time_rule_us(scalars), 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--windows", type=int, default=5_000)
    args = parser.parse_args()
    figures = run(args.readings, args.windows)
    for name, value in figures.items():
        print(f"{name:36s} {value:>10}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
