"""Failure scenarios with ground truth: each acts on the readings of the devices it afflicts.

The contract (:class:`Scenario`): which device types it applies to, when it starts
(``onset_s`` after the run start, jittered per device), how long the PRECURSOR lasts
(``precursor_s``; 0 = no warning), and ``apply``, which changes the afflicted devices'
values in place given each device's progress through the precursor (0..1, >1 = FAILURE)
and may drop readings (dropout). FAILURE lasts until the run ends, or ``duration_s`` when
the incident ends (NORMAL again after it). Delivery faults use the optional hook
``deliver``, which may shift the afflicted devices' event times (a wrong clock) and hold
their readings back to release them later (store-and-forward); by default it returns None
(on time, stamped with the tick's time). Every reading of an afflicted device carries the
label ``{scenario, phase}``; healthy devices carry none. See docs/scenarios.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from producers.models import BatteryPack, DeviceModel, GridGuardian, PumpMotor, Vehicle

__all__ = ["PHASES", "SCENARIOS", "ClockSkew", "Delivery", "GatewayOutage", "Scenario", "phase_of"]

PHASES = ("NORMAL", "PRECURSOR", "FAILURE")
ANY = "*"


def phase_of(progress: np.ndarray) -> np.ndarray:
    """0 NORMAL (before onset, progress < 0), 1 PRECURSOR (0 <= p < 1), 2 FAILURE (p >= 1)."""
    return np.where(progress < 0, 0, np.where(progress < 1, 1, 2))


@dataclass(frozen=True)
class Delivery:
    """How the afflicted devices' readings of one tick travel (per device; None = as usual).

    ``shift_ms``: int64 milliseconds added to the event time (a device clock that is off).
    ``withheld``: True = this tick's readings are buffered; a device's buffer is released, in
    event-time order and with the original event times, at the first tick it is not withheld.
    """

    shift_ms: np.ndarray | None = None
    withheld: np.ndarray | None = None


class Scenario(ABC):
    """One way equipment fails. Subclasses are stateless; per-device state goes in ``state``."""

    name: ClassVar[str]
    device_types: ClassVar[frozenset[str]]  # ANY = every model (sensor faults)
    onset_s: ClassVar[float]
    precursor_s: ClassVar[float]
    duration_s: float | None = None  # how long FAILURE lasts; None = until the run ends
    # False: afflicts devices only when named (``--scenario``), never in the random mix of
    # ``--failure-rate`` alone, so mixed fleets (and detection scored on them) stay as they were.
    in_random_mix: ClassVar[bool] = True

    def applies_to(self, model: type[DeviceModel]) -> bool:
        return ANY in self.device_types or model.device_type in self.device_types

    def deliver(
        self, since_s: np.ndarray, rng: np.random.Generator, state: dict[str, np.ndarray]
    ) -> Delivery | None:
        """Clock and delivery faults, given seconds since each afflicted device's onset.

        The default changes nothing (stamped with the tick's time, sent at once).
        """
        return None

    @abstractmethod
    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        """Change ``values`` (afflicted devices x channels) in place; return a keep mask or None."""


def _ramp(progress: np.ndarray) -> np.ndarray:
    """0 before onset, rising to 1 at the end of the precursor, then 1."""
    return np.clip(progress, 0.0, 1.0)


class BearingWear(Scenario):
    name = "bearing_wear"
    device_types = frozenset({PumpMotor.device_type})
    onset_s = 3_600.0
    precursor_s = 6 * 3_600.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        r = _ramp(progress)
        fail = progress >= 1
        wear = 3.0 * r**2 + 6.0 * fail  # mm/s added by spalling bearing races
        values[:, 0] += wear
        values[:, 1] += wear * 4.0 + fail * np.abs(rng.standard_normal(len(r))) * 8.0
        values[:, 2] += 12.0 * r**2 + 25.0 * fail  # friction heat
        values[:, 5] *= 1.0 + 0.03 * r + 0.05 * fail
        return None


class ThermalRunaway(Scenario):
    name = "thermal_runaway"
    device_types = frozenset({BatteryPack.device_type})
    onset_s = 1_800.0
    precursor_s = 1_800.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        r = _ramp(progress)
        fail = progress >= 1
        # Self-heating of cell 1: temperature rate grows exponentially; internal short sags voltage.
        rise = 20.0 * np.expm1(3.0 * r) / np.expm1(3.0) + fail * 60.0 * np.minimum(
            progress - 1.0, 3.0
        ).clip(0)
        c1v, c1t = model.index("cell_voltage_1"), model.index("cell_temperature_1")
        values[:, c1t] += rise
        values[:, c1t + 1] += 0.3 * rise  # neighbour heats by conduction
        sag = 0.12 * r**2 + 0.8 * fail
        values[:, c1v] -= sag
        values[:, model.index("voltage")] -= sag
        return None


class TyreSlowLeak(Scenario):
    name = "tyre_slow_leak"
    device_types = frozenset({Vehicle.device_type})
    onset_s = 1_800.0
    precursor_s = 3 * 3_600.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        r = _ramp(progress)
        fail = progress >= 1
        kept = 1.0 - 0.3 * r - 0.25 * fail  # air mass left in the front-left tyre
        values[:, model.index("tyre_pressure_fl")] *= kept
        values[:, model.index("tyre_temperature_fl")] += 12.0 * (1.0 - kept)  # flexing heat
        return None


class TransformerOverload(Scenario):
    name = "transformer_overload"
    device_types = frozenset({GridGuardian.device_type})
    onset_s = 3_600.0
    precursor_s = 2 * 3_600.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        r = _ramp(progress)
        fail = progress >= 1
        factor = 1.0 + 0.5 * r + 0.2 * fail  # load growing to 1.7x
        for sensor in ("line_current", "emf"):
            values[:, model.index(sensor)] *= factor
        # Steady hot-spot rise scales with K^1.6: the same law as the healthy model.
        values[:, model.index("hotspot_temperature")] += 65.0 * (factor**1.6 - 1.0) * 0.8
        values[:, model.index("acoustic_level")] += 6.0 * (factor - 1.0)
        return None


class Arcing(Scenario):
    name = "arcing"
    device_types = frozenset({GridGuardian.device_type})
    onset_s = 1_800.0
    precursor_s = 3_600.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        r = _ramp(progress)
        fail = progress >= 1
        p_burst = np.where(progress >= 0, 0.03 + 0.3 * r + 0.6 * fail, 0.0)
        burst = rng.random(len(r)) < p_burst
        values[:, model.index("acoustic_level")] += burst * rng.uniform(15.0, 35.0, len(r))
        values[:, model.index("emf")] += burst * rng.uniform(5.0, 20.0, len(r))
        values[:, model.index("voc")] += fail * 400.0  # burning insulation
        values[:, model.index("particulates")] += fail * 150.0
        return None


def _primary(model: type[DeviceModel]) -> int:
    return model.index(model.primary)


class StepSpike(Scenario):
    name = "step_spike"
    device_types = frozenset({ANY})
    onset_s = 1_800.0
    precursor_s = 0.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        c = _primary(model)
        fail = progress >= 0
        scale = np.abs(values[:, c]) * 0.3 + 5.0
        spike = (rng.random(len(progress)) < 0.05) * scale * 3.0
        values[:, c] += fail * (scale + spike)
        return None


class StuckSensor(Scenario):
    name = "stuck_sensor"
    device_types = frozenset({ANY})
    onset_s = 1_800.0
    precursor_s = 600.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        c = _primary(model)
        pre = (progress >= 0) & (progress < 1)
        # Precursor: a failing ADC loses resolution (values snap to a coarse grid).
        values[pre, c] = np.round(values[pre, c] * 2.0) / 2.0
        held = state.setdefault("held", values[:, c].copy())
        stuck = progress >= 1
        held[~stuck] = values[~stuck, c]
        values[stuck, c] = held[stuck]
        return None


class SensorDrift(Scenario):
    name = "sensor_drift"
    device_types = frozenset({ANY})
    onset_s = 1_800.0
    precursor_s = 4 * 3_600.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        c = _primary(model)
        ref = state.setdefault("ref", np.abs(values[:, c]) * 0.05 + 1.0)
        # Offset grows linearly; at the end of the precursor it leaves the calibration tolerance.
        values[:, c] += ref * np.clip(progress, 0.0, None)
        return None


class Dropout(Scenario):
    name = "dropout"
    device_types = frozenset({ANY})
    onset_s = 1_800.0
    precursor_s = 1_800.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        p_drop = np.where(progress < 0, 0.0, np.where(progress < 1, 0.05, 0.6))
        # The whole device drops a tick (radio link): sequence numbers show the gap.
        return np.asarray(rng.random(len(progress)) >= p_drop)


class IntermittentContact(Scenario):
    name = "intermittent_contact"
    device_types = frozenset({ANY})
    onset_s = 1_800.0
    precursor_s = 1_800.0

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        c = _primary(model)
        p_bad = np.where(progress < 0, 0.0, np.where(progress < 1, 0.03, 0.3))
        bad = rng.random(len(progress)) < p_bad
        # A loose connector reads open circuit (0) or a noisy spike, at random.
        spike = values[:, c] + rng.normal(0.0, 1.0, len(progress)) * (np.abs(values[:, c]) + 5.0)
        open_circuit = rng.random(len(progress)) < 0.5
        values[:, c] = np.where(bad, np.where(open_circuit, 0.0, spike), values[:, c])
        return None


class GatewayOutage(Scenario):
    """The device's gateway loses its uplink and stores readings until it returns.

    For ``duration_s`` (default 20 minutes of event time) after the onset, the device's
    readings are withheld; at the first tick after that they are all flushed at once, in
    event-time order with their original timestamps, and the device then sends normally again.
    Values stay healthy. To change the outage length, pass a configured instance to the fleet:
    ``Fleet(..., scenarios=SCENARIOS | {"gateway_outage": GatewayOutage(duration_s=3_600)})``.

    >>> outage = GatewayOutage(duration_s=600)
    >>> outage.deliver(np.array([-1.0, 0.0, 599.0, 600.0]), np.random.default_rng(0), {}).withheld
    array([False,  True,  True, False])
    """

    name = "gateway_outage"
    device_types = frozenset({ANY})
    onset_s = 1_800.0
    precursor_s = 0.0
    duration_s: float | None = 20 * 60.0
    in_random_mix = False

    def __init__(self, duration_s: float | None = None) -> None:
        if duration_s is not None:
            if not 0 < duration_s < float("inf"):
                msg = f"gateway outage duration_s must be a finite number > 0, got {duration_s}"
                raise ValueError(msg)
            self.duration_s = duration_s

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        return None  # the readings are right; only their delivery fails

    def deliver(
        self, since_s: np.ndarray, rng: np.random.Generator, state: dict[str, np.ndarray]
    ) -> Delivery | None:
        return Delivery(withheld=(since_s >= 0) & (since_s < (self.duration_s or 0.0)))


class ClockSkew(Scenario):
    """The device loses its time sync: from the onset its clock is off by a constant offset
    (2 s to 5 min, either sign, drawn per device) plus a drift (10-50 ms per minute, either
    sign). Values stay healthy; the event times carry the error.

    >>> skew, state = ClockSkew(), {}
    >>> first = skew.deliver(np.array([-5.0, 0.0]), np.random.default_rng(0), state).shift_ms
    >>> int(first[0]), bool(abs(first[1]) >= 2_000)
    (0, True)
    >>> later = skew.deliver(np.array([-5.0, 600.0]), np.random.default_rng(1), state).shift_ms
    >>> drift_ms = state["drift_ms_per_s"][1] * 600
    >>> bool(abs(later[1] - first[1] - drift_ms) <= 1), bool(100 <= abs(drift_ms) <= 500)
    (True, True)
    """

    name = "clock_skew"
    device_types = frozenset({ANY})
    onset_s = 1_800.0
    precursor_s = 0.0
    in_random_mix = False
    offset_range_s: ClassVar[tuple[float, float]] = (2.0, 300.0)
    drift_range_ms_per_min: ClassVar[tuple[float, float]] = (10.0, 50.0)

    def apply(
        self,
        model: type[DeviceModel],
        values: np.ndarray,
        progress: np.ndarray,
        dt_s: float,
        rng: np.random.Generator,
        state: dict[str, np.ndarray],
    ) -> np.ndarray | None:
        return None  # the readings are right; only their timestamps are wrong

    def deliver(
        self, since_s: np.ndarray, rng: np.random.Generator, state: dict[str, np.ndarray]
    ) -> Delivery | None:
        if "offset_ms" not in state:  # drawn once per device, at the first tick
            n = len(since_s)
            lo, hi = np.log(self.offset_range_s)
            sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
            state["offset_ms"] = sign * np.exp(rng.uniform(lo, hi, n)) * 1000.0
            sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
            state["drift_ms_per_s"] = sign * rng.uniform(*self.drift_range_ms_per_min, n) / 60.0
        # Rounding the whole error (not offset and drift apart) keeps each stamp within 0.5 ms.
        error = state["offset_ms"] + state["drift_ms_per_s"] * since_s
        return Delivery(shift_ms=np.where(since_s >= 0, np.round(error), 0).astype(np.int64))


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        BearingWear(),
        ThermalRunaway(),
        TyreSlowLeak(),
        TransformerOverload(),
        Arcing(),
        StepSpike(),
        StuckSensor(),
        SensorDrift(),
        Dropout(),
        IntermittentContact(),
        GatewayOutage(),
        ClockSkew(),
    )
}
