"""Anomaly likelihood: how unusual a series' recent ``|z|`` is (Numenta's method).

Judges the baseline's ``|z|`` before the reading is learned (so it is registered before
the per-reading score), on the series ``likelihood`` selects (``"generic"``: the series of
unknown meaning, e.g. replayed NAB data). An anomaly alerts at once: the short average
already asks for more than one unusual reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from streams.alerts import adapt_threshold
from streams.detect.likelihood import AnomalyLikelihood
from streams.detect.state import State, read_dict, read_opt_float
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

__all__ = ["Likelihood", "LikelihoodState"]

_PREFIX = "score:likelihood:"


@dataclass
class LikelihoodState:
    """The likelihood model of one series, and its adapted threshold."""

    model: AnomalyLikelihood
    threshold: float | None = None  # raised by false-positive feedback

    def to_state(self) -> State:
        return {"model": self.model.to_state(), "threshold": self.threshold}

    @classmethod
    def from_state(cls, d: State) -> LikelihoodState:
        model = AnomalyLikelihood.from_state(read_dict(d, "model"))
        return cls(model, read_opt_float(d, "threshold"))


class Likelihood(Signal):
    """The anomaly likelihood of the series' recent scores."""

    name: ClassVar[str] = "likelihood"
    series_state_type = LikelihoodState

    @classmethod
    def enabled(cls, config: DetectionConfig) -> bool:
        return config.likelihood != "off"

    def new_series_state(self, device_type: str, capability: str) -> LikelihoodState | None:
        cfg = self.config
        if not (
            cfg.likelihood == "all" or (cfg.likelihood == "generic" and capability == "GENERIC")
        ):
            return None
        return LikelihoodState(
            AnomalyLikelihood(
                warmup=cfg.likelihood_warmup,
                threshold=cfg.likelihood_threshold,
                short=cfg.likelihood_short,
                history=cfg.likelihood_history,
            )
        )

    def on_series(
        self, reading: ReadingView, dev: DeviceState, ser: SeriesState, *, learn: bool
    ) -> Sequence[Finding]:
        st: LikelihoodState | None = ser.signals.get(self.key)
        det = ser.detector
        if st is None or not det.is_warm:
            return NO_FINDINGS
        ts, value, cap = reading.ts, reading.value, ser.capability
        s = st.model.process_one(det.z(value, ts), ts, learn=learn)
        threshold = st.threshold or s.threshold
        if not (s.is_anomaly and s.score >= threshold):
            return NO_FINDINGS
        found: list[Finding] = [
            ScorePoint(cap, s.detector, ts, s.score, threshold, value, True, reading.reading_id)
        ]
        if learn:
            found.append(
                AlertCandidate(
                    f"anomaly:{cap}",
                    "WARNING",
                    ts,
                    cap,
                    f"{cap} unusual for this series: recent scores have a likelihood of "
                    f"1e-{s.score:.1f} (threshold 1e-{threshold:g}, value {value:g})",
                    {f"{_PREFIX}{cap}": f"{s.score:.3f}"},
                )
            )
        return found

    def feedback(self, dev: DeviceState, attribute: str, score: float) -> bool:
        """``score:likelihood:{CAPABILITY}``: raise that capability's likelihood threshold."""
        if not attribute.startswith(_PREFIX):
            return False
        cap = attribute.removeprefix(_PREFIX)
        for ser in dev.series.values():
            st: LikelihoodState | None = ser.signals.get(self.name)
            if ser.capability == cap and st is not None:
                current = st.threshold or self.config.likelihood_threshold
                st.threshold = adapt_threshold(current, score)
        return True

    def thresholds(self, dev: DeviceState) -> dict[str, float]:
        out: dict[str, float] = {}
        for key, ser in dev.series.items():
            st: LikelihoodState | None = ser.signals.get(self.name)
            if st is not None and st.threshold is not None:
                out[f"likelihood:{key}"] = st.threshold
        return out
