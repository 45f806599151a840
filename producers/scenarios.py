"""Failure scenarios with ground truth: each acts on the readings of the devices it afflicts.

The contract (:class:`Scenario`): which device types it applies to, when it starts
(``onset_s`` after the run start, jittered per device), how long the PRECURSOR lasts
(``precursor_s``; 0 = no warning), and ``apply``, which changes the afflicted devices'
values in place given each device's progress through the precursor (0..1, >1 = FAILURE)
and may drop readings (dropout). Every reading of an afflicted device carries the label
``{scenario, phase}``; healthy devices carry none. See docs/scenarios.md.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from producers.models import BatteryPack, DeviceModel, GridGuardian, PumpMotor, Vehicle

__all__ = ["PHASES", "SCENARIOS", "Scenario", "phase_of"]

PHASES = ("NORMAL", "PRECURSOR", "FAILURE")
ANY = "*"


def phase_of(progress: np.ndarray) -> np.ndarray:
    """0 NORMAL (before onset, progress < 0), 1 PRECURSOR (0 <= p < 1), 2 FAILURE (p >= 1)."""
    return np.where(progress < 0, 0, np.where(progress < 1, 1, 2))


class Scenario(ABC):
    """One way equipment fails. Subclasses are stateless; per-device state goes in ``state``."""

    name: ClassVar[str]
    device_types: ClassVar[frozenset[str]]  # ANY = every model (sensor faults)
    onset_s: ClassVar[float]
    precursor_s: ClassVar[float]

    def applies_to(self, model: type[DeviceModel]) -> bool:
        return ANY in self.device_types or model.device_type in self.device_types

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
    )
}
