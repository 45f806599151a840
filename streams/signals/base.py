"""The signal contract: one kind of evidence the detection stage looks for.

A :class:`Signal` turns readings into *findings*: :class:`AlertCandidate` (a rule that fired;
the stage folds it into the device's one alert) and :class:`ScorePoint` (an
``AnomalyScore`` record for ``telemetry.anomalies``). It owns its state, which the stage
keeps inside the device's :class:`DeviceState` under the signal's :attr:`Signal.name`: per
device (``DeviceState.signals``) and/or per series (``SeriesState.signals``). That state is
small and bounded, and its classes (named by :attr:`Signal.device_state_type` and
:attr:`Signal.series_state_type`) convert it to plain data and back (``to_state`` /
``from_state``, see ``streams.detect.state``), so the stage checkpoints it with the device
(``streams.device_snapshot``); a signal can also checkpoint and restore its own part
(:meth:`Signal.checkpoint`, :meth:`Signal.restore`).

The stage calls the hooks in three phases for each reading, in the order of the
registration list (``streams.signals.SIGNALS``):

1. :meth:`Signal.on_device`: every reading of the device, even one that is not a real
   measurement (sequence gaps, closing the device window);
2. :meth:`Signal.on_reading`: every plausible reading (safety limits);
3. :meth:`Signal.on_series`: every plausible reading of a learned series (not an
   operating state), with ``learn`` telling whether the reading may be learned (GOOD, new);
   only of the series the signal judges: those it keeps a state of, or every series when
   it keeps no series state (does not override :meth:`Signal.new_series_state`).

Operator feedback: a signal marks the alerts it raises with score attributes
(``score:…``); :meth:`Signal.feedback` is offered each attribute of a false positive and
claims the ones it wrote, raising its own threshold. Time is event time; no clock, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from streams.detect.state import PlainState, State, StateError, read_dict, read_value
from streams.detect.univariate import SeasonalZScore

if TYPE_CHECKING:
    from schemas.reading_columns import ReadingColumns
    from streams.signals.config import DetectionConfig

__all__ = [
    "NO_FINDINGS",
    "AlertCandidate",
    "DeviceKey",
    "DeviceState",
    "Finding",
    "ReadingView",
    "ScorePoint",
    "SeriesState",
    "Signal",
    "route_feedback",
    "signal_thresholds",
]

DeviceKey = tuple[str, str]  # (tenant, device)


@dataclass(slots=True)  # not frozen: the stage refills one view for every reading
class ReadingView:
    """The fields of one decoded ``UniversalSensorReading`` that signals use.

    The stage keeps one view and refills it (:meth:`fill`) for every reading: a hook reads
    it during its call and never keeps it (findings copy what they need).
    """

    device: DeviceKey
    device_type: str
    capability: str
    series: str  # the sensor id (or the capability when the reading has none)
    value: float
    ts: int
    sequence: Any
    reading_id: str

    @classmethod
    def of(cls, reading: Mapping[str, Any]) -> ReadingView:
        """A new view of a decoded reading.

        >>> r = ReadingView.of({"tenant_id": "t", "device_id": "d", "device_type": "MACHINE",
        ...     "capability": "FLOW", "value": 1.5, "timestamp": 7, "sensor_id": "d/f"})
        >>> r.device, r.series, r.reading_id
        (('t', 'd'), 'd/f', '')
        """
        return cls.__new__(cls).fill(reading)

    def fill(self, reading: Mapping[str, Any]) -> ReadingView:
        """This view, refilled with a decoded reading (every field is set)."""
        cap: str = reading["capability"]
        self.device = (reading["tenant_id"], reading["device_id"])
        self.device_type = reading["device_type"]
        self.capability = cap
        self.series = reading.get("sensor_id") or cap
        self.value = reading["value"]
        self.ts = reading["timestamp"]
        self.sequence = reading.get("sequence")
        self.reading_id = reading.get("reading_id") or ""
        return self

    def fill_at(self, cols: ReadingColumns, i: int) -> ReadingView:
        """This view, refilled with item ``i`` of a batch's columns (as :meth:`fill`)."""
        cap = cols.capability[i]
        self.device = (cols.tenant_id[i], cols.device_id[i])
        self.device_type = cols.device_type[i]
        self.capability = cap
        self.series = cols.sensor_id[i] or cap
        self.value = cols.value[i]
        self.ts = cols.timestamp[i]
        self.sequence = cols.sequence[i]
        self.reading_id = cols.reading_id[i]
        return self


@dataclass(frozen=True, slots=True)
class AlertCandidate:
    """A rule that fired on a device at event time ``ts`` (becomes an ``Observation``)."""

    rule: str
    severity: Any
    ts: int
    capability: str
    summary: str
    attributes: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ScorePoint:
    """One score of a detector (becomes an ``AnomalyScore`` record; flagged ones counted)."""

    capability: str
    detector: str
    ts: int
    score: float
    threshold: float
    value: float
    flagged: bool
    reading_id: str = ""

    def record(self, reading: ReadingView) -> dict[str, Any]:
        """The ``AnomalyScore`` record of this score of ``reading``'s device."""
        return {
            "ts": self.ts,
            "tenant_id": reading.device[0],
            "device_id": reading.device[1],
            "device_type": reading.device_type,
            "capability": self.capability,
            "detector": self.detector,
            "score": self.score,
            "threshold": self.threshold,
            "value": self.value,
            "is_anomaly": self.flagged,
            "reading_id": self.reading_id,
        }


Finding = AlertCandidate | ScorePoint

NO_FINDINGS: tuple[Finding, ...] = ()
"""What a hook returns when it has nothing to say (shared: no list built per reading)."""


@dataclass
class SeriesState:
    """One sensor of a device: its seasonal baseline and the signals' state of it.

    ``detector`` (the seasonal z-score) is the baseline every series signal reads (residual,
    spread, warm-up); the per-reading score signal judges it and teaches it.
    """

    capability: str
    detector: SeasonalZScore
    last_ts: int = -1  # last learned event time: a replay does not learn twice
    signals: dict[str, Any] = field(default_factory=dict)  # signal name -> its state
    # the stage's on_series hooks of the signals judging this series, bound on first use:
    # a cache, never checkpointed
    hooks: tuple[Callable[..., Sequence[Finding]], ...] | None = field(
        default=None, compare=False, repr=False
    )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("hooks", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.hooks = None


@dataclass
class DeviceState:
    """Everything learned about one device (the unit of checkpointing)."""

    device_type: str
    series: dict[str, SeriesState] = field(default_factory=dict)
    last_seen: int = -1  # largest event time of a reading (state expiry)
    signals: dict[str, Any] = field(default_factory=dict)  # signal name -> its state


class Signal:
    """One kind of evidence: hooks called by the stage, state kept in the device's state.

    Subclasses set :attr:`name` (unique: it keys their state) and override the hooks they
    need; every hook returns the findings, in order (:data:`NO_FINDINGS` when there are
    none: hooks run for every reading), and may update the signal's state.
    """

    name: ClassVar[str] = "signal"
    # True: on_device also sees late readings (their device's windows had passed; they are
    # not scored), for signals that count every reading, such as sequence gaps.
    counts_late: ClassVar[bool] = False
    device_state_type: ClassVar[type[PlainState] | None] = None
    """The class of :meth:`new_device_state`'s states (``None``: it keeps none); its
    ``from_state`` rebuilds one from a checkpoint."""
    series_state_type: ClassVar[type[PlainState] | None] = None
    """The class of :meth:`new_series_state`'s states (``None``: it keeps none)."""

    def __init__(self, config: DetectionConfig) -> None:
        self.config = config
        # the key of this signal's state: its name, as an instance attribute because the
        # hooks read it for every reading (a class attribute is a slower lookup)
        self.key: str = self.name

    @classmethod
    def enabled(cls, config: DetectionConfig) -> bool:
        """Whether the stage runs this signal at all with ``config``."""
        return True

    # -- state ---------------------------------------------------------------------------
    def new_device_state(self, device_type: str) -> Any:
        """This signal's state of a new device (``None``: it keeps none)."""
        return None

    def new_series_state(self, device_type: str, capability: str) -> Any:
        """This signal's state of a new series (``None``: it does not judge this series, and
        its :meth:`on_series` is not called for it)."""
        return None

    def to_state(self, dev: DeviceState) -> State:
        """This signal's state of ``dev`` as plain data: ``{"device": …, "series": {sensor:
        …}}`` (series it keeps no state of are left out)."""
        name = self.name
        part = dev.signals.get(name)
        return {
            "device": None if part is None else _plain(self.device_state_type, part, name),
            "series": {
                k: _plain(self.series_state_type, s.signals[name], name)
                for k, s in dev.series.items()
                if s.signals.get(name) is not None
            },
        }

    def from_state(self, dev: DeviceState, d: State) -> None:
        """Put back the state :meth:`to_state` returned (series ``dev`` does not hold are
        ignored). Everything is read and checked before ``dev`` changes: ``StateError``
        (or ``ValueError``) on a field missing or of the wrong type."""
        name = self.name
        device = read_value(d, "device")
        series = read_dict(d, "series")
        device_part = None if device is None else _typed(self.device_state_type, device, name)
        series_parts = {
            k: _typed(self.series_state_type, v, name) for k, v in series.items() if k in dev.series
        }
        if device_part is not None:
            dev.signals[name] = device_part
        for key, state in series_parts.items():
            dev.series[key].signals[name] = state

    def checkpoint(self, dev: DeviceState) -> bytes:
        """This signal's state of ``dev`` (device and series parts), as JSON bytes."""
        return json.dumps(self.to_state(dev), separators=(",", ":")).encode()

    def restore(self, dev: DeviceState, blob: bytes) -> None:
        """Put back the state :meth:`checkpoint` returned (see :meth:`from_state`)."""
        self.from_state(dev, json.loads(blob))

    # -- hooks ---------------------------------------------------------------------------
    def on_device(self, reading: ReadingView, dev: DeviceState) -> Sequence[Finding]:
        """Every reading of the device, before it is checked for plausibility."""
        return NO_FINDINGS

    def on_reading(self, reading: ReadingView, dev: DeviceState) -> Sequence[Finding]:
        """Every plausible reading of the device."""
        return NO_FINDINGS

    def on_series(
        self, reading: ReadingView, dev: DeviceState, ser: SeriesState, *, learn: bool
    ) -> Sequence[Finding]:
        """Every plausible reading of a learned series; ``learn``: GOOD and not seen yet."""
        return NO_FINDINGS

    # -- operator feedback ---------------------------------------------------------------
    def feedback(self, dev: DeviceState, attribute: str, score: float) -> bool:
        """A false positive's score ``attribute`` (``score:…``) with its ``score``: if this
        signal wrote that attribute, raise its threshold above the score and return True."""
        return False

    def implements(self, hook: str) -> bool:
        """Whether this signal overrides ``hook`` (the stage calls only those: a reading
        passes through every hook of every signal, so a no-op call is worth skipping)."""
        return getattr(type(self), hook) is not getattr(Signal, hook)

    def thresholds(self, dev: DeviceState) -> dict[str, float]:
        """Thresholds feedback raised, keyed by what they judge: a series (its sensor id),
        prefixed with the signal's name unless it is the per-reading score."""
        return {}


def _plain(cls: type[PlainState] | None, state: Any, name: str) -> State:
    if cls is None or not isinstance(state, cls):
        msg = (
            f"signal {name!r} keeps a state of type {type(state).__name__} but declares "
            f"{getattr(cls, '__name__', None)} as its state type: set device_state_type / "
            "series_state_type to a class with to_state and from_state"
        )
        raise TypeError(msg)
    return state.to_state()


def _typed(cls: type[PlainState] | None, d: Any, name: str) -> Any:
    if cls is None:
        msg = f"{name}: a state for a signal that keeps none"
        raise StateError(msg)
    if not isinstance(d, dict):
        msg = f"{name}: expected an object, got {d!r:.60}"
        raise StateError(msg)
    return cls.from_state(d)


def route_feedback(
    signals: Sequence[Signal], dev: DeviceState, attribute: str, score: float
) -> bool:
    """Offer a false positive's score attribute to the signals; the first to claim it (the
    one that wrote it) adapts its threshold. Returns whether one claimed it."""
    return any(sig.feedback(dev, attribute, score) for sig in signals)


def signal_thresholds(signals: Sequence[Signal], dev: DeviceState) -> dict[str, float]:
    """The thresholds feedback raised on ``dev``, of every signal."""
    out: dict[str, float] = {}
    for sig in signals:
        out.update(sig.thresholds(dev))
    return out
