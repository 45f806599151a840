"""Joint state: a machine's signals judged together at every instant (online Hotelling T²).

A device whose sensors report at the same event time (one row of a machine's log: SKAB's
pump rig, eight signals at 1 Hz) has a *joint state* at each instant. The readings of one
instant are gathered into a row (keyed by sensor); when the device's next instant begins
the row is complete and is scored by a :class:`~streams.detect.multivariate.WindowMahalanobis`
(exponentially weighted mean and covariance, ``joint_fading``; score normalised so that a
healthy row is about ``N(0, 1)`` whatever the number of signals): Hotelling's T² with an
online covariance. A closed valve moves flow, pressure and current *together* in a way the
learned covariance does not explain, though no single signal leaves its own range.

``joint_persistence`` rows scoring ``joint_threshold`` or more among the last
``joint_persistence_window`` make each such row an ``anomaly:joint`` observation (so the
alert's evidence spans the incident, first to last row). Rows scoring at or above the
threshold are learned at a tenth of the rate (a lasting change of regime becomes normal,
an incident of minutes does not). A row missing one of the signals learned is not scored.
The signal runs on devices with at least ``JOINT_MIN_SIGNALS`` series (``joint`` off: never).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from streams.alerts import adapt_threshold
from streams.detect.multivariate import WindowMahalanobis
from streams.detect.state import (
    State,
    StateError,
    read_bool,
    read_dict,
    read_int,
    read_opt_float,
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

__all__ = ["JOINT_MIN_SIGNALS", "JointSignal", "JointState"]

JOINT_MIN_SIGNALS = 3
"""Fewer signals than this have no joint state worth a model (the per-series scores judge
them)."""
_ATTRIBUTE = "score:joint"
_MAX_ROW = 256  # sensors gathered in one row at most (a bound on the state)


def new_joint_model(cfg: DetectionConfig) -> WindowMahalanobis:
    """The row model of a device: a normalised, centred Mahalanobis distance."""
    return WindowMahalanobis(
        warmup=cfg.joint_warmup,
        threshold=cfg.joint_threshold,
        fading=cfg.joint_fading,
        shrink=cfg.joint_shrink,
        clip=cfg.joint_clip,
        normalize=True,
        center=True,
        slow_above=cfg.joint_threshold,
    )


@dataclass
class JointState:
    """One device's row model, the row being gathered and the recent high rows."""

    model: WindowMahalanobis
    row_ts: int = -1  # event time of the row being gathered
    row: dict[str, float] = field(default_factory=dict)  # sensor -> value
    row_learn: bool = True  # every reading of the row may be learned
    hits: int = 0  # bit i: the row i rows ago scored at or above the threshold
    smooth: dict[str, float] = field(default_factory=dict)  # sensor -> smoothed value
    threshold: float | None = None  # raised by false-positive feedback

    def to_state(self) -> State:
        return {
            "model": self.model.to_state(),
            "row_ts": self.row_ts,
            "row": dict(self.row),
            "row_learn": self.row_learn,
            "hits": self.hits,
            "threshold": self.threshold,
            "smooth": dict(self.smooth),
        }

    @classmethod
    def from_state(cls, d: State) -> JointState:
        return cls(
            model=WindowMahalanobis.from_state(read_dict(d, "model")),
            row_ts=read_int(d, "row_ts"),
            row=_numbers(d, "row"),
            row_learn=read_bool(d, "row_learn"),
            hits=read_int(d, "hits"),
            smooth=_numbers(d, "smooth"),
            threshold=read_opt_float(d, "threshold"),
        )


def _numbers(d: State, key: str) -> dict[str, float]:
    part = read_dict(d, key)
    if not all(isinstance(k, str) and isinstance(v, int | float) for k, v in part.items()):
        msg = f"{key}: expected sensor -> number, got {part!r:.60}"
        raise StateError(msg)
    return {k: float(v) for k, v in part.items()}


class JointSignal(Signal):
    """The joint state of a device's signals at each instant, against what was learned."""

    name: ClassVar[str] = "joint"
    device_state_type = JointState

    @classmethod
    def enabled(cls, config: DetectionConfig) -> bool:
        return config.joint

    def new_device_state(self, device_type: str) -> JointState:
        return JointState(new_joint_model(self.config))

    def on_series(
        self, reading: ReadingView, dev: DeviceState, ser: SeriesState, *, learn: bool
    ) -> Sequence[Finding]:
        st: JointState | None = dev.signals.get(self.key)
        ts = reading.ts
        if st is None or ts < st.row_ts:
            return NO_FINDINGS  # late for its row: the row was judged without it
        if ts == st.row_ts:
            if len(st.row) < _MAX_ROW:
                st.row[reading.series] = reading.value
            st.row_learn = st.row_learn and learn
            return NO_FINDINGS
        found = self._judge(reading, dev, st) if st.row else NO_FINDINGS
        st.row_ts, st.row, st.row_learn = ts, {reading.series: reading.value}, learn
        return found

    def _judge(self, reading: ReadingView, dev: DeviceState, st: JointState) -> Sequence[Finding]:
        """Score (and learn) the completed row of ``st``."""
        cfg = self.config
        row, model = st.row, st.model
        if len(row) < JOINT_MIN_SIGNALS and not model.features:
            return NO_FINDINGS
        if cfg.joint_smooth > 1:
            a = 1.0 / cfg.joint_smooth
            smooth = st.smooth
            for k, v in row.items():
                before = smooth.get(k)
                smooth[k] = v if before is None else before + a * (v - before)
            if len(smooth) > _MAX_ROW:
                st.smooth = smooth = {k: smooth[k] for k in row}
            row = {k: smooth[k] for k in row}
        if model.n_learned >= 2 and model.is_warm:
            score, residuals = model.score_and_residuals(row)
        else:
            score, residuals = 0.0, {}
        if score != score:  # nan: a row without every learned signal is not judged
            return NO_FINDINGS
        if st.row_learn:
            model.learn_one(row, st.row_ts)
        threshold = st.threshold or cfg.joint_threshold
        high = model.is_warm and score >= threshold
        window = (1 << cfg.joint_persistence_window) - 1
        st.hits = ((st.hits << 1) | int(high)) & window
        if not (high and st.hits.bit_count() >= cfg.joint_persistence):
            return NO_FINDINGS
        top = max(residuals, key=lambda k: abs(residuals[k])) if residuals else ""
        ser = dev.series.get(top)
        cap = ser.capability if ser is not None else reading.capability
        named = ", ".join(
            f"{k} {residuals[k]:+.1f}"
            for k in sorted(residuals, key=lambda k: -abs(residuals[k]))[:3]
        )
        device_id = reading.device[1]
        return [
            ScorePoint(cap, "joint_t2", st.row_ts, score, threshold, row.get(top, 0.0), True),
            AlertCandidate(
                "anomaly:joint",
                "WARNING",
                st.row_ts,
                cap,
                f"signals of {device_id} unusual together at one instant: joint score "
                f"{score:.1f} >= {threshold:g} in {st.hits.bit_count()} of the last "
                f"{cfg.joint_persistence_window} rows (given the others: {named})",
                {_ATTRIBUTE: f"{score:.3f}"},
            ),
        ]

    def feedback(self, dev: DeviceState, attribute: str, score: float) -> bool:
        """``score:joint``: raise the device's joint threshold above ``score``."""
        if attribute != _ATTRIBUTE:
            return False
        st: JointState | None = dev.signals.get(self.name)
        if st is not None:
            st.threshold = adapt_threshold(st.threshold or self.config.joint_threshold, score)
        return True

    def thresholds(self, dev: DeviceState) -> dict[str, float]:
        st: JointState | None = dev.signals.get(self.name)
        if st is None or st.threshold is None:
            return {}
        return {"joint": st.threshold}
