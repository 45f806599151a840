"""The baseline a user would try first: an offline IsolationForest on per-device windows.

This is the original smart-maintenance plan, kept as the yardstick for the pipeline's online
detectors (``bench.scoring`` scores both against the same incidents). Pure, no I/O: the caller
passes rows of the ``aggregates`` table (one window size) as mappings with ``device_id``,
``device_type``, ``capability``, ``window_start_ms``, ``mean`` and ``std`` (other keys such as
``count``, ``min``, ``max`` are ignored).

Per device type (one model each):

* features: one vector per (device, window start): ``mean`` and ``std`` of every capability
  seen in that type's training windows (capabilities seen only later are ignored: the model
  cannot know them); a missing or non-finite value is the column's training median;
* training: the windows starting before ``train_end_ms`` (the "known good" first hours of a
  run), standardised (``StandardScaler``), ``IsolationForest(n_estimators=100,
  contamination, random_state=seed)``; a type with fewer than two training windows gets no
  model and no alerts;
* scoring: every window starting at or after ``train_end_ms``; flagged windows
  (``predict == -1``) become alerts with the pipeline's dedup rule (``streams.alerts``): a flag
  less than ``quiet_period_ms`` after the previous flag of the same device continues the
  current alert, otherwise it opens a new one, ``alert_id = f"{device}@{first_window_start}"``.

An alert's ``first_seen`` is the *start* of its first flagged window, as the alert id says;
the flag is only computable at the window's end, so lead times of this baseline are
optimistic by up to one window size.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.preprocessing import StandardScaler

from bench.scoring import AlertRow

__all__ = ["RULE", "isolation_forest_alerts"]

RULE = "isolation_forest"

# (device_id, window_start_ms) -> {capability: (mean, std)}
_Windows = dict[tuple[str, int], dict[str, tuple[float, float]]]


def _finite(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


def _matrix(windows: _Windows, keys: list[tuple[str, int]], caps: list[str]) -> np.ndarray:
    nan = (math.nan, math.nan)
    return np.array(
        [[v for cap in caps for v in windows[key].get(cap, nan)] for key in keys], dtype=float
    ).reshape(len(keys), 2 * len(caps))


def _fill(x: np.ndarray, medians: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(x), medians, x)


def _dedup(flags: Iterable[tuple[str, int]], quiet_period_ms: int) -> list[AlertRow]:
    """Flagged windows ``(device, start)`` → alerts, merging flags closer than the quiet period.

    >>> [a.alert_id for a in _dedup([("d", 0), ("d", 60), ("d", 200), ("e", 60)], 100)]
    ['d@0', 'd@200', 'e@60']
    """
    alerts = []
    last: dict[str, int] = {}
    for device, start in sorted(flags):
        previous = last.get(device)
        if previous is None or start - previous >= quiet_period_ms:
            alerts.append(AlertRow(f"{device}@{start}", device, start, RULE, "WARNING"))
        last[device] = start
    return alerts


def isolation_forest_alerts(
    aggregates: Iterable[Mapping[str, Any]],
    *,
    train_end_ms: int,
    quiet_period_ms: int,
    contamination: float = 0.01,
    seed: int = 0,
) -> tuple[list[AlertRow], float]:
    """Alerts of the IsolationForest baseline and the CPU seconds spent in fit + predict.

    The CPU time (``time.process_time``) covers scaling, fitting and predicting, not the
    pivoting of the rows; divide by the number of readings behind the windows for µs per
    reading. Alerts are sorted by device and ``first_seen``.

    >>> import random
    >>> rng = random.Random(1)
    >>> rows = [{"device_id": f"m-{d}", "device_type": "MACHINE", "capability": "VIBRATION",
    ...          "window_start_ms": w, "mean": rng.gauss(2.0, 0.1), "std": rng.gauss(0.3, 0.02)}
    ...         for d in range(3) for w in range(100)]
    >>> rows.append({"device_id": "m-0", "device_type": "MACHINE", "capability": "VIBRATION",
    ...              "window_start_ms": 100, "mean": 50.0, "std": 5.0})
    >>> alerts, cpu_s = isolation_forest_alerts(rows, train_end_ms=100, quiet_period_ms=5)
    >>> [a.alert_id for a in alerts]
    ['m-0@100']
    """
    by_type: dict[str, _Windows] = defaultdict(lambda: defaultdict(dict))
    for row in aggregates:
        key = (str(row["device_id"]), int(row["window_start_ms"]))
        by_type[str(row["device_type"])][key][str(row["capability"])] = (
            _finite(row["mean"]),
            _finite(row["std"]),
        )

    flags: list[tuple[str, int]] = []
    cpu_s = 0.0
    for windows in by_type.values():
        train_keys = sorted(k for k in windows if k[1] < train_end_ms)
        test_keys = sorted(k for k in windows if k[1] >= train_end_ms)
        caps = sorted(
            {
                cap
                for k in train_keys
                for cap, pair in windows[k].items()
                if not all(math.isnan(v) for v in pair)
            }
        )
        if len(train_keys) < 2 or not test_keys or not caps:
            continue
        x_train = _matrix(windows, train_keys, caps)
        medians = np.nanmedian(np.where(np.isnan(x_train).all(axis=0), 0.0, x_train), axis=0)
        x_train = _fill(x_train, medians)
        x_test = _fill(_matrix(windows, test_keys, caps), medians)

        started = time.process_time()
        scaler = StandardScaler().fit(x_train)
        model = IsolationForest(
            n_estimators=100, contamination=contamination, random_state=seed
        ).fit(scaler.transform(x_train))
        predicted = model.predict(scaler.transform(x_test))
        cpu_s += time.process_time() - started

        flags.extend(k for k, p in zip(test_keys, predicted, strict=True) if p == -1)
    return _dedup(flags, quiet_period_ms), cpu_s
