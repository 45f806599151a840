"""Per-reading score: the seasonal z-score of every reading, with persistence.

The series' baseline (:class:`~streams.detect.univariate.SeasonalZScore`, held in
``SeriesState.detector``) scores each reading, then learns it when it may. ``persistence``
anomalous readings among the last ``persistence_window`` make an ``anomaly:{CAPABILITY}``
observation: one noisy reading never pages anyone. An operating state (a pack's charge
current) is learned for the device window but never judged on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from streams.alerts import adapt_threshold
from streams.detect.rules import OPERATING_STATE
from streams.detect.state import State, read_float, read_int, read_opt_float
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

__all__ = ["ReadingScore", "ScoreState"]


@dataclass
class ScoreState:
    """The persistence of one series' anomalies, and its adapted threshold."""

    threshold: float | None = None  # raised by false-positive feedback
    hits: int = 0  # bit mask of the last anomalies (1 = anomalous)
    max_score: float = 0.0  # largest score while the current run of hits lasts

    def to_state(self) -> State:
        return {"threshold": self.threshold, "hits": self.hits, "max_score": self.max_score}

    @classmethod
    def from_state(cls, d: State) -> ScoreState:
        return cls(read_opt_float(d, "threshold"), read_int(d, "hits"), read_float(d, "max_score"))


class ReadingScore(Signal):
    """The seasonal z-score of each reading (and the learning of the series' baseline)."""

    name: ClassVar[str] = "score"
    series_state_type = ScoreState

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        # read once: on_series runs for every reading
        self._mask = (1 << config.persistence_window) - 1
        self._persistence = config.persistence
        self._every = config.score_sample_every

    def new_series_state(self, device_type: str, capability: str) -> ScoreState:
        return ScoreState()

    def on_series(
        self, reading: ReadingView, dev: DeviceState, ser: SeriesState, *, learn: bool
    ) -> Sequence[Finding]:
        st: ScoreState = ser.signals[self.key]
        det = ser.detector
        ts, value, cap = reading.ts, reading.value, ser.capability
        n = det.n_learned
        score, anomalous, warm = det.process(value, ts, learn)
        flagged = (
            anomalous
            and (st.threshold is None or score >= st.threshold)
            and (reading.device_type, cap) not in OPERATING_STATE
        )
        alert: AlertCandidate | None = None
        if learn:
            st.hits = hits = ((st.hits << 1) | flagged) & self._mask
            st.max_score = max(st.max_score, score) if hits else 0.0
            if flagged and hits.bit_count() >= self._persistence:
                alert = AlertCandidate(
                    f"anomaly:{cap}",
                    "WARNING",
                    ts,
                    cap,
                    f"{cap} anomalous: {hits.bit_count()} of the last "
                    f"{self.config.persistence_window} readings scored >= {det.threshold:g} "
                    f"(last {score:.1f}, value {value:g})",
                    {f"score:{cap}": f"{st.max_score:.3f}"},
                )
        every = self._every
        if not (flagged or (every > 0 and warm and n % every == 0)):
            return NO_FINDINGS if alert is None else (alert,)
        point = ScorePoint(
            cap,
            det.name,
            ts,
            score,
            st.threshold or det.threshold,
            value,
            flagged,
            reading.reading_id,
        )
        return (point,) if alert is None else (alert, point)

    def feedback(self, dev: DeviceState, attribute: str, score: float) -> bool:
        """``score:{CAPABILITY}``: raise the threshold of that capability's series."""
        cap = attribute.removeprefix("score:")
        mine = [ser for ser in dev.series.values() if ser.capability == cap]
        for ser in mine:
            st: ScoreState = ser.signals[self.name]
            st.threshold = adapt_threshold(st.threshold or self.config.threshold, score)
        return bool(mine)

    def thresholds(self, dev: DeviceState) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, ser in dev.series.items():
            st: ScoreState = ser.signals[self.name]
            if st.threshold is not None:
                out[key] = st.threshold
        return out
