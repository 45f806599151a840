"""The device-model contract: channels plus a vectorised, stateful ``step`` over all devices."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

__all__ = ["DAY_S", "Channel", "DeviceModel", "first_order"]

DAY_S = 86_400.0


@dataclass(frozen=True)
class Channel:
    """One sensor of a device: capability (the quantity), unit, and a sensor name.

    ``name`` tells apart several sensors of one capability (four tyres, four cells); it
    defaults to the capability, so reading ids stay ``{device}/{capability}@{ts}``.
    """

    capability: str
    unit: str
    name: str = ""

    @property
    def sensor(self) -> str:
        return self.name or self.capability.lower()


def first_order(x: np.ndarray, target: np.ndarray | float, dt_s: float, tau_s: float) -> np.ndarray:
    """Exact step of ``dx/dt = (target - x) / tau`` over ``dt_s`` (stable for any dt)."""
    a = float(np.exp(-dt_s / tau_s))
    return np.asarray(target + (x - target) * a)


class DeviceModel(ABC):
    """A device kind: ``n`` devices whose state advances by ``step`` (no I/O, no clock).

    ``step`` gets event time and the step length, returns values of shape (n, channels)
    and draws noise only from the generator it is given, so a seed fixes every value.
    ``primary`` is the sensor that the generic sensor-fault scenarios act on.
    """

    device_type: ClassVar[str]
    prefix: ClassVar[str]
    channels: ClassVar[tuple[Channel, ...]]
    primary: ClassVar[str]

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        self.n = n
        self.rng = rng
        self.started = False

    @classmethod
    def index(cls, sensor: str) -> int:
        for i, ch in enumerate(cls.channels):
            if ch.sensor == sensor:
                return i
        msg = f"{cls.__name__} has no sensor {sensor!r}"
        raise KeyError(msg)

    @abstractmethod
    def step(self, t_s: float, dt_s: float) -> np.ndarray:
        """Advance to event time ``t_s`` and return the readings, shape (n, channels)."""

    def noise(self, scale: float | np.ndarray) -> np.ndarray:
        return self.rng.standard_normal(self.n) * scale
