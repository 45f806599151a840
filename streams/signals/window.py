"""Device window: a device's signals judged together, once per closed window.

Each window (``trend_bucket_ms`` of event time) feature ``i`` is the mean of series ``i``
minus its seasonal baseline at the window's middle, in that series' typical spread (fixed
when the series first enters a window). The window model (:func:`new_window_model`) scores
the vector against past windows: signals moving together in a way they do not usually
(bearing temperature and vibration rising while flow and current do not) score high though
no single one is extreme; ``window_persistence`` high windows among the last
``window_persistence_window`` make an ``anomaly:window`` observation. Each feature's
residual *given the others* feeds a two-sided CUSUM: one signal drifting away from the
signals that usually explain it (one tyre, one cell, a coolant sensor against its engine)
accumulates evidence window after window.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from streams.alerts import adapt_threshold
from streams.detect.multivariate import WindowHST, WindowHSTResiduals, WindowMahalanobis
from streams.detect.rules import OPERATING_STATE
from streams.detect.state import (
    State,
    StateError,
    read_dict,
    read_float,
    read_floats,
    read_int,
    read_opt_dict,
    read_opt_float,
    read_value,
)
from streams.signals.base import (
    NO_FINDINGS,
    AlertCandidate,
    DeviceState,
    Finding,
    ReadingView,
    ScorePoint,
    SeriesState,
    Signal,
)

if TYPE_CHECKING:
    from streams.signals.config import DetectionConfig

__all__ = ["DeviceWindow", "WindowModel", "WindowSeriesState", "WindowState", "new_window_model"]

WindowModel = WindowMahalanobis | WindowHSTResiduals
_ATTRIBUTE = "score:window"


def new_window_model(cfg: DetectionConfig) -> WindowModel:
    """A device's window model, as ``cfg.window_model`` says.

    ``"mahalanobis"``: :class:`WindowMahalanobis` (normalised, centred at 0) scores the
    window and gives the residuals the drift CUSUM accumulates. ``"hst"``: River's
    ``HalfSpaceTrees`` (:class:`WindowHST`, score in ``[0, 1]``, ``window_hst_*``) scores
    the window, and the same :class:`WindowMahalanobis` is kept beside it for the CUSUM's
    residuals (:class:`WindowHSTResiduals`); warm-up and persistence are shared.
    """
    mahalanobis = WindowMahalanobis(
        warmup=cfg.window_warmup,
        threshold=cfg.window_threshold,
        fading=cfg.window_fading,
        shrink=cfg.window_shrink,
        clip=cfg.window_clip,
        normalize=True,
        center=False,
        slow_above=cfg.window_threshold,
    )
    if cfg.window_model == "mahalanobis":
        return mahalanobis
    hst = WindowHST(
        warmup=cfg.window_warmup,
        threshold=cfg.window_hst_threshold,
        n_trees=cfg.window_hst_trees,
        height=cfg.window_hst_height,
        window_size=cfg.window_hst_size,
    )
    return WindowHSTResiduals(hst, mahalanobis)


@dataclass
class WindowSeriesState:
    """One series' part of the window being filled."""

    sum: float = 0.0  # sum and count of the learned values
    n: int = 0
    scale: float = 0.0  # fixed at the first window: residuals in this series' spread

    def to_state(self) -> State:
        return {"sum": self.sum, "n": self.n, "scale": self.scale}

    @classmethod
    def from_state(cls, d: State) -> WindowSeriesState:
        return cls(read_float(d, "sum"), read_int(d, "n"), read_float(d, "scale"))


@dataclass
class WindowState:
    """A device's window model and the window being filled."""

    model: WindowModel | None = None  # over the series' bucket residuals
    start: int = -1  # event time the window being filled starts at
    hits: int = 0  # bit mask of the last anomalous windows
    refused: int = 0  # windows in a row missing a feature (rebuilt after an hour)
    threshold: float | None = None  # raised by false-positive feedback
    score: float = math.nan  # the last window's score
    drift_up: list[float] = field(default_factory=list)  # CUSUM per feature of ``model``
    drift_down: list[float] = field(default_factory=list)
    settled: int = 0  # windows seen since the series' profiles are warm (up to settle)
    settle_sum: dict[str, float] | None = None  # their features' sums

    def to_state(self) -> State:
        model = self.model
        return {
            # the model's kind is one of two, chosen here: never a class named by the record
            "model_kind": None if model is None else _MODEL_KINDS[type(model)],
            "model": None if model is None else model.to_state(),
            "start": self.start,
            "hits": self.hits,
            "refused": self.refused,
            "threshold": self.threshold,
            "score": self.score,
            "drift_up": self.drift_up,
            "drift_down": self.drift_down,
            "settled": self.settled,
            "settle_sum": self.settle_sum,
        }

    @classmethod
    def from_state(cls, d: State) -> WindowState:
        kind = read_value(d, "model_kind")
        model: WindowModel | None = None
        if kind == "mahalanobis":
            model = WindowMahalanobis.from_state(read_dict(d, "model"))
        elif kind == "hst":
            model = WindowHSTResiduals.from_state(read_dict(d, "model"))
        elif kind is not None:
            msg = f'model_kind: expected "mahalanobis", "hst" or null, got {kind!r:.60}'
            raise StateError(msg)
        settle: dict[str, float] | None = None
        sums = read_opt_dict(d, "settle_sum")
        if sums is not None:
            settle = {str(k): read_float(sums, k) for k in sums}
        return cls(
            model=model,
            start=read_int(d, "start"),
            hits=read_int(d, "hits"),
            refused=read_int(d, "refused"),
            threshold=read_opt_float(d, "threshold"),
            score=read_float(d, "score"),
            drift_up=read_floats(d, "drift_up"),
            drift_down=read_floats(d, "drift_down"),
            settled=read_int(d, "settled"),
            settle_sum=settle,
        )


_MODEL_KINDS: dict[type, str] = {WindowMahalanobis: "mahalanobis", WindowHSTResiduals: "hst"}


class DeviceWindow(Signal):
    """The device's series judged together, window by window (``DetectionConfig.window``)."""

    name: ClassVar[str] = "window"
    device_state_type = WindowState
    series_state_type = WindowSeriesState

    @classmethod
    def enabled(cls, config: DetectionConfig) -> bool:
        return config.window

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self._bucket_ms = config.trend_bucket_ms  # read once: on_device runs for every reading
        if config.window_model == "hst":  # river loads at start, not at a device's first window
            importlib.import_module("river.anomaly")

    def new_device_state(self, device_type: str) -> WindowState:
        return WindowState()

    def new_series_state(self, device_type: str, capability: str) -> WindowSeriesState:
        return WindowSeriesState()

    def on_device(self, reading: ReadingView, dev: DeviceState) -> Sequence[Finding]:
        st: WindowState = dev.signals[self.key]
        ts = reading.ts
        bucket = ts - ts % self._bucket_ms
        if st.start < 0:
            st.start = bucket
            return NO_FINDINGS
        if bucket <= st.start:
            return NO_FINDINGS
        found = self._close(reading, dev, st)
        st.start = bucket
        return found

    def on_series(
        self, reading: ReadingView, dev: DeviceState, ser: SeriesState, *, learn: bool
    ) -> Sequence[Finding]:
        st: WindowState = dev.signals[self.key]
        if learn and reading.ts >= st.start:
            part: WindowSeriesState = ser.signals[self.key]
            part.sum += reading.value
            part.n += 1
        return NO_FINDINGS

    def feedback(self, dev: DeviceState, attribute: str, score: float) -> bool:
        """``score:window``: raise the device's window threshold."""
        if attribute != _ATTRIBUTE:
            return False
        st: WindowState = dev.signals[self.name]
        current = st.threshold or (st.model.threshold if st.model else self.config.window_threshold)
        st.threshold = adapt_threshold(current, score)
        return True

    def thresholds(self, dev: DeviceState) -> dict[str, float]:
        st: WindowState | None = dev.signals.get(self.name)
        return {"window": st.threshold} if st is not None and st.threshold is not None else {}

    def _features(self, dev: DeviceState, mid: int) -> dict[str, float]:
        """The closed window's features (and a fresh window for every series)."""
        feats: dict[str, float] = {}
        for key, ser in dev.series.items():
            part: WindowSeriesState = ser.signals[self.name]
            if not part.n:
                continue
            det = ser.detector
            if det.n_learned >= self.config.window_min_learned:
                if part.scale <= 0.0:
                    part.scale = det.spread()
                feats[key] = det.residual(part.sum / part.n, mid) / part.scale
            part.sum, part.n = 0.0, 0
        return feats

    def _close(self, reading: ReadingView, dev: DeviceState, st: WindowState) -> Sequence[Finding]:
        """Close the device's window: score its series' residuals together."""
        cfg = self.config
        dtype = reading.device_type
        feats = self._features(dev, st.start + cfg.trend_bucket_ms // 2)
        if len(feats) < 2:
            return NO_FINDINGS
        win = st.model
        if win is not None and not all(k in feats for k in win.features):
            st.refused += 1
            if st.refused >= 3_600_000 // cfg.trend_bucket_ms:
                st.model = None  # a series is gone: learn the device's new set of series
            return NO_FINDINGS
        st.refused = 0
        if win is None:
            win = st.model = new_window_model(cfg)
            st.hits = 0
        given = tuple(
            sorted(k for k in feats if (dtype, dev.series[k].capability) in OPERATING_STATE)
        )
        if win.given != given:
            win.given = given  # conditioned on the device's operating state, never judging it
        score, residuals = win.score_and_residuals(feats)
        warm = win.is_warm
        st.score = score
        win.learn_one(feats, reading.ts)
        if not st.drift_up or len(st.drift_up) != len(win.features):
            st.drift_up = [0.0] * len(win.features)
            st.drift_down = [0.0] * len(win.features)
        if not (warm and math.isfinite(score)) or not all(
            dev.series[k].detector.is_warm for k in win.features
        ):
            # the series' daily profiles are not learned yet: their residuals still change
            # meaning (a partial hour's mean, then the full profile), so nothing is judged
            st.drift_up = [0.0] * len(win.features)
            st.drift_down = [0.0] * len(win.features)
            return NO_FINDINGS
        if win.given and st.settled < cfg.window_settle:
            self._settle(win, st, feats)
            return NO_FINDINGS
        return self._judge(reading, dev, st, win, score, residuals)

    def _settle(self, win: WindowModel, st: WindowState, feats: dict[str, float]) -> None:
        """The profiles have just become warm: residuals are now taken from yesterday's
        profile, no longer from the recent level the window learned on. On a device with an
        operating state they carry the difference between today's state and yesterday's at
        that hour (a pack at another charge than yesterday: its pack and cell voltages all
        lower together, for hours), which day one's windows never showed. The mean of the
        first ``window_settle`` windows is that offset: it is added to the covariance as a
        direction of normal variation (rank one) before anything is judged; one signal
        against the others stays as visible."""
        acc = st.settle_sum or {}
        for name in win.features:
            acc[name] = acc.get(name, 0.0) + feats[name]
        st.settled += 1
        st.settle_sum = acc
        if st.settled >= self.config.window_settle:
            win.add_direction({n: v / st.settled for n, v in acc.items()})
            st.settle_sum = None
        st.drift_up = [0.0] * len(win.features)
        st.drift_down = [0.0] * len(win.features)

    def _judge(
        self,
        reading: ReadingView,
        dev: DeviceState,
        st: WindowState,
        win: WindowModel,
        score: float,
        residuals: dict[str, float],
    ) -> Sequence[Finding]:
        """The window's score against its threshold, then the drift of each signal."""
        cfg = self.config
        device_id, ts = reading.device[1], reading.ts
        found: list[Finding] = []
        threshold = st.threshold or win.threshold
        flagged = score >= threshold
        st.hits = ((st.hits << 1) | flagged) & ((1 << cfg.window_persistence_window) - 1)
        judged = [k for k in residuals if k not in win.given] or list(residuals)
        top = max(judged, key=lambda k: abs(residuals[k]))
        top_cap = dev.series[top].capability
        if flagged and st.hits.bit_count() >= cfg.window_persistence:
            lead = sorted(judged, key=lambda k: -abs(residuals[k]))[:3]
            named = ", ".join(f"{k} {residuals[k]:+.1f}" for k in lead)
            found.append(
                AlertCandidate(
                    "anomaly:window",
                    "WARNING",
                    ts,
                    top_cap,
                    f"signals of {device_id} unusual together: window score {score:.1f} >= "
                    f"{threshold:g} in {st.hits.bit_count()} of the last "
                    f"{cfg.window_persistence_window} "
                    f"windows (given the others: {named})",
                    {_ATTRIBUTE: f"{score:.3f}"},
                )
            )
        found += self._score_point(top_cap, win.name, score, threshold, flagged, st, win)
        # drift of one signal away from the others: CUSUM of its conditional residual
        h, k = cfg.drift_threshold, cfg.drift_slack
        for i, key in enumerate(win.features):
            if key in win.given:
                continue  # an operating state is not judged, only conditioned on
            r = max(-4.0 * h, min(4.0 * h, residuals[key]))
            up = min(2.0 * h, max(0.0, st.drift_up[i] + r - k))
            down = min(2.0 * h, max(0.0, st.drift_down[i] - r - k))
            st.drift_up[i], st.drift_down[i] = up, down
            if max(up, down) >= h:
                cap = dev.series[key].capability
                side = "above" if up >= down else "below"
                found.append(
                    AlertCandidate(
                        "anomaly:window",
                        "WARNING",
                        ts,
                        cap,
                        f"{key} drifts {side} what {device_id}'s other signals predict "
                        f"(CUSUM {max(up, down):.1f} >= {h:g})",
                        {_ATTRIBUTE: f"{score:.3f}"},
                    )
                )
                found += self._score_point(cap, "window_drift", max(up, down), h, True, st, win)
        return found

    def _score_point(
        self,
        cap: str,
        detector: str,
        score: float,
        threshold: float,
        flagged: bool,
        st: WindowState,
        win: WindowModel,
    ) -> Sequence[Finding]:
        """The window's ``AnomalyScore`` (flagged ones, and a sample of a tenth as many as
        the per-reading scores when sampling is on)."""
        every = self.config.score_sample_every
        if not (flagged or (every > 0 and win.n_learned % max(1, every // 10) == 0)):
            return NO_FINDINGS
        return [ScorePoint(cap, detector, st.start, score, threshold, score, flagged)]
