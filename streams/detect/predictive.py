"""Predictive time-to-limit: a robust online slope and the time until a limit is crossed.

The last ``size`` accepted readings are kept (bounded); the slope is the Theil-Sen estimate
(median of pairwise slopes), robust to up to ~29 % outliers, and the line goes through the
median of ``value - slope * t``. If the line reaches ``limit`` from the current side, the
estimated time to the crossing is returned; a crossing inside ``horizon_s`` is what raises a
``PREDICTED_FAILURE`` alert.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Literal

from streams.detect.base import Detector
from streams.detect.state import (
    State,
    StateError,
    read_float,
    read_int,
    read_str,
    read_value,
)

__all__ = ["TimeToLimit", "theil_sen"]


def theil_sen(ts_s: list[float], values: list[float]) -> tuple[float, float]:
    """``(slope, intercept)`` of the Theil-Sen line through the points.

    >>> theil_sen([0.0, 1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 5.0, 7.0, 100.0])
    (2.0, 1.0)
    """
    n = len(ts_s)
    if n < 2:
        msg = f"theil_sen needs at least 2 points, got {n}"
        raise ValueError(msg)
    slopes = [
        (values[j] - values[i]) / (ts_s[j] - ts_s[i])
        for i in range(n)
        for j in range(i + 1, n)
        if ts_s[j] != ts_s[i]
    ]
    slope = statistics.median(slopes) if slopes else 0.0
    intercept = statistics.median(v - slope * t for t, v in zip(ts_s, values, strict=True))
    return slope, intercept


class TimeToLimit(Detector[float]):
    """Estimated seconds until a series crosses ``limit`` (``direction`` above or below).

    As a detector its score is ``horizon_s / time_to_limit`` (0 when no crossing is
    predicted), so ``score >= 1`` means a crossing inside the horizon; ``threshold`` is 1.

    >>> ttl = TimeToLimit(limit=60.0, horizon_s=7_200.0, size=8, warmup=4)
    >>> for i in range(8):
    ...     ttl.learn_one(40.0 + 0.01 * 60 * i, i * 60_000)  # +0.01 degC/s
    True
    True
    True
    True
    True
    True
    True
    True
    >>> round(ttl.time_to_limit_s(7 * 60_000))
    1580
    """

    name = "time_to_limit"

    def __init__(
        self,
        *,
        limit: float,
        direction: Literal["above", "below"] = "above",
        horizon_s: float = 6 * 3_600.0,
        size: int = 32,
        warmup: int = 16,
    ) -> None:
        super().__init__(warmup=warmup, threshold=1.0)
        if not math.isfinite(limit):
            msg = f"limit must be a finite number, got {limit!r}"
            raise ValueError(msg)
        if direction not in ("above", "below"):
            msg = f'direction must be "above" or "below", got {direction!r}'
            raise ValueError(msg)
        if size < 2:
            msg = f"size must be >= 2 readings, got {size}"
            raise ValueError(msg)
        self.limit = limit
        self.direction = direction
        self.horizon_s = horizon_s
        self._points: deque[tuple[int, float]] = deque(maxlen=size)

    def to_state(self) -> State:
        return {
            "limit": self.limit,
            "direction": self.direction,
            "horizon_s": self.horizon_s,
            "size": self._points.maxlen,
            "warmup": self.warmup,
            "n_learned": self.n_learned,
            "points": [[t, v] for t, v in self._points],
        }

    @classmethod
    def from_state(cls, d: State) -> TimeToLimit:
        direction = read_str(d, "direction")
        if direction not in ("above", "below"):
            msg = f'direction: expected "above" or "below", got {direction!r}'
            raise StateError(msg)
        new = cls(
            limit=read_float(d, "limit"),
            direction="above" if direction == "above" else "below",
            horizon_s=read_float(d, "horizon_s"),
            size=read_int(d, "size"),
            warmup=read_int(d, "warmup"),
        )
        points = read_value(d, "points")
        if not isinstance(points, list) or len(points) > (new._points.maxlen or 0):
            msg = f"points: expected a list of at most {new._points.maxlen} [ts, value] pairs"
            raise StateError(msg)
        for pair in points:
            if not (isinstance(pair, list) and len(pair) == 2):
                msg = f"points: expected [ts, value] pairs, got {pair!r:.60}"
                raise StateError(msg)
            point = {"ts": pair[0], "value": pair[1]}
            new._points.append((read_int(point, "ts"), read_float(point, "value")))
        return new._learned(d)

    def _accepts(self, x: float) -> bool:
        return isinstance(x, float | int) and math.isfinite(x)

    def _learn(self, x: float, ts_ms: int) -> None:
        if self._points and ts_ms <= self._points[-1][0]:
            return  # out of order or repeated: the window keeps increasing time
        self._points.append((ts_ms, float(x)))

    def time_to_limit_s(self, now_ms: int) -> float | None:
        """Seconds from ``now_ms`` until the fitted line crosses the limit.

        0.0 when the line is already past the limit at ``now_ms``; None when there are fewer
        than 2 points or the trend does not move towards the limit.
        """
        if len(self._points) < 2:
            return None
        t0 = self._points[0][0]
        ts_s = [(t - t0) / 1000.0 for t, _ in self._points]
        slope, intercept = theil_sen(ts_s, [v for _, v in self._points])
        now_s = (now_ms - t0) / 1000.0
        level = intercept + slope * now_s
        sign = 1.0 if self.direction == "above" else -1.0
        if sign * (level - self.limit) >= 0:
            return 0.0
        if sign * slope <= 0:
            return None
        return (self.limit - level) / slope

    def _score(self, x: float, ts_ms: int) -> float:
        eta = self.time_to_limit_s(ts_ms)
        if eta is None:
            return 0.0
        return self.horizon_s / max(eta, 1.0)  # capped: a finite score for the record
