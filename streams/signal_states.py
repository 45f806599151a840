"""The signals' state of a new device or series, and the hooks that judge a series.

The detection stage asks this for the state a new series starts with (the baseline every
series signal reads, plus each signal's own part), for the ``on_series`` hooks of the
signals judging a series, and to give a device restored from a checkpoint the state of
signals enabled since. Series of the same kinds share their hooks (one tuple per set of
signals keeping a state of them); a new baseline is a copy of one unlearned prototype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from streams.detect.univariate import SeasonalZScore
from streams.signals.base import DeviceState, Finding, SeriesState, Signal
from streams.signals.config import DetectionConfig

__all__ = ["SeriesHook", "SignalStates", "baseline_model"]

SeriesHook = Callable[..., Sequence[Finding]]


def baseline_model(cfg: DetectionConfig) -> SeasonalZScore:
    """A new series' per-reading baseline (its ``SeriesState.detector``)."""
    return SeasonalZScore(warmup=cfg.warmup, threshold=cfg.threshold, accept_ms=cfg.drift_accept_ms)


class SignalStates:
    """New states of ``signals`` (the stage's enabled signals, in order) under ``config``."""

    def __init__(self, signals: Sequence[Signal], config: DetectionConfig) -> None:
        self.signals = tuple(signals)
        self._series_signals = tuple(s for s in signals if s.implements("on_series"))
        self._stateful = tuple(s for s in signals if s.implements("new_series_state"))
        self._baseline = baseline_model(config)  # never learns: copied for every new series
        # by the names of the signals keeping a state of a series (in order): its hooks
        self._hooks: dict[tuple[str, ...], tuple[SeriesHook, ...]] = {}

    def new_series(self, device_type: str, capability: str) -> SeriesState:
        """A new series of a device of ``device_type``, with every signal's state of it."""
        ser = SeriesState(capability, self._baseline.copy())
        for sig in self._stateful:
            state = sig.new_series_state(device_type, capability)
            if state is not None:
                ser.signals[sig.name] = state
        return ser

    def hooks(self, ser: SeriesState) -> tuple[SeriesHook, ...]:
        """The on_series hooks of the signals judging ``ser``: those keeping a state of it
        and those keeping no series state at all (no state for a series = not judged)."""
        kept = tuple(ser.signals)
        hooks = self._hooks.get(kept)
        if hooks is None:
            hooks = self._hooks[kept] = tuple(
                sig.on_series
                for sig in self._series_signals
                if sig.name in ser.signals or not sig.implements("new_series_state")
            )
        return hooks

    def complete(self, dev: DeviceState) -> None:
        """Give ``dev`` and its series the state of every signal that keeps one and has
        none yet (a new device, or a checkpoint written with other signals enabled)."""
        for sig in self.signals:
            if sig.name not in dev.signals:
                state = sig.new_device_state(dev.device_type)
                if state is not None:
                    dev.signals[sig.name] = state
            for ser in dev.series.values():
                if sig.name not in ser.signals:
                    part = sig.new_series_state(dev.device_type, ser.capability)
                    if part is not None:
                        ser.signals[sig.name] = part
                        ser.hooks = None  # bound again with this signal
