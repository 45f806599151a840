"""Running statistics with a plain state: exponentially weighted mean and variance, and the
Page-Hinkley drift test.

The same arithmetic as ``river.stats.EWMean``, ``river.stats.EWVar`` and
``river.drift.PageHinkley`` (two-sided), bit for bit (``tests/unit/streams/
test_detect_moments.py`` compares them), written out here because their state must
checkpoint as plain numbers: River's Rust-backed statistics only pickle.

>>> m = EWMean(0.5)
>>> for x in (1.0, 3.0, 5.0):
...     m.update(x)
>>> m.get(), EWMean.from_state(m.to_state()).get()
(3.5, 3.5)
"""

from __future__ import annotations

import math

from streams.detect.state import State, read_bool, read_dict, read_float, read_int

__all__ = ["EWMean", "EWVar", "PageHinkley"]


class EWMean:
    """Exponentially weighted mean: the first value, then ``a * x + (1 - a) * mean``."""

    __slots__ = ("fading_factor", "mean", "started")

    def __init__(self, fading_factor: float) -> None:
        if not 0.0 <= fading_factor <= 1.0:
            msg = f"fading_factor must be in [0, 1], got {fading_factor!r}"
            raise ValueError(msg)
        self.fading_factor = fading_factor
        self.mean = 0.0
        self.started = False

    def update(self, x: float) -> None:
        if self.started:
            a = self.fading_factor
            self.mean = a * x + (1.0 - a) * self.mean
        else:
            self.mean = x
            self.started = True

    def get(self) -> float:
        return self.mean

    def to_state(self) -> State:
        return {"fading": self.fading_factor, "mean": self.mean, "started": self.started}

    @classmethod
    def from_state(cls, d: State) -> EWMean:
        new = cls(read_float(d, "fading"))
        new.mean = read_float(d, "mean")
        new.started = read_bool(d, "started")
        return new


class EWVar:
    """Exponentially weighted variance: ``EW(x^2) - EW(x)^2``."""

    __slots__ = ("of_sq", "of_x")

    def __init__(self, fading_factor: float) -> None:
        self.of_x = EWMean(fading_factor)
        self.of_sq = EWMean(fading_factor)

    def update(self, x: float) -> None:
        self.of_x.update(x)
        self.of_sq.update(x * x)

    def get(self) -> float:
        m = self.of_x.mean
        return self.of_sq.mean - m * m

    def to_state(self) -> State:
        return {"mean": self.of_x.to_state(), "sq": self.of_sq.to_state()}

    @classmethod
    def from_state(cls, d: State) -> EWVar:
        new = cls(0.0)
        new.of_x = EWMean.from_state(read_dict(d, "mean"))
        new.of_sq = EWMean.from_state(read_dict(d, "sq"))
        return new


class PageHinkley:
    """Two-sided Page-Hinkley test (River's ``mode="both"``) on a stream of numbers.

    After a drift is detected, the next update starts the test afresh.
    """

    __slots__ = (
        "alpha",
        "delta",
        "drift_detected",
        "max_decrease",
        "mean",
        "min_increase",
        "min_instances",
        "n",
        "sum_decrease",
        "sum_increase",
        "threshold",
    )

    def __init__(
        self,
        *,
        min_instances: int = 30,
        delta: float = 0.005,
        threshold: float = 50.0,
        alpha: float = 1 - 0.0001,
    ) -> None:
        self.min_instances = min_instances
        self.delta = delta
        self.threshold = threshold
        self.alpha = alpha
        self._reset()

    def _reset(self) -> None:
        self.drift_detected = False
        self.n = 0.0
        self.mean = 0.0
        self.sum_increase = 0.0
        self.sum_decrease = 0.0
        self.min_increase = math.inf
        self.max_decrease = -1.0

    def update(self, x: float) -> None:
        if self.drift_detected:
            self._reset()
        n = self.n = self.n + 1.0
        mean = self.mean = self.mean + (1.0 / n) * (x - self.mean)
        dev = x - mean
        alpha = self.alpha
        inc = self.sum_increase = alpha * self.sum_increase + dev - self.delta
        dec = self.sum_decrease = alpha * self.sum_decrease + dev + self.delta
        # min() and max() written out (the same comparisons, NaN included)
        if inc < self.min_increase:
            self.min_increase = inc
        if dec > self.max_decrease:
            self.max_decrease = dec
        if n >= self.min_instances:
            self.drift_detected = (
                inc - self.min_increase > self.threshold or self.max_decrease - dec > self.threshold
            )

    def to_state(self) -> State:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_state(cls, d: State) -> PageHinkley:
        new = cls(
            min_instances=read_int(d, "min_instances"),
            delta=read_float(d, "delta"),
            threshold=read_float(d, "threshold"),
            alpha=read_float(d, "alpha"),
        )
        new.drift_detected = read_bool(d, "drift_detected")
        for name in ("n", "mean", "sum_increase", "sum_decrease", "min_increase", "max_decrease"):
            setattr(new, name, read_float(d, name))
        return new
