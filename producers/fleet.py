"""A seeded fleet of simulated devices, sampled for the whole fleet at once with numpy.

Each device kind is a :class:`DeviceModel`: a list of channels (capability, unit) and a
vectorised ``sample`` over all devices of that kind. The models here are a first,
plausible cut (daily cycle + load cycle + sensor noise); richer physics and failure
scenarios plug in as new models without touching the fleet or the producer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MODELS", "Channel", "DeviceModel", "Fleet", "FleetTick"]

DAY_S = 86_400.0


@dataclass(frozen=True)
class Channel:
    """One sensor of a device: a capability with its unit and the signal's shape."""

    capability: str
    unit: str
    base: float
    daily_amplitude: float
    load_amplitude: float
    noise: float
    low: float = -math.inf
    high: float = math.inf


@dataclass(frozen=True)
class DeviceModel:
    """A device kind: its Avro device type, id prefix and channels."""

    device_type: str
    prefix: str
    channels: tuple[Channel, ...]
    load_period_s: float = 3_600.0

    def sample(self, t_s: float, phase: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Values for every device of this kind at event time ``t_s``: shape (devices, channels)."""
        n = phase.shape[0]
        daily = np.sin(2 * np.pi * (t_s / DAY_S + phase))[:, None]
        load = np.sin(2 * np.pi * (t_s / self.load_period_s + 2 * phase))[:, None]
        base = np.array([c.base for c in self.channels])
        amp_d = np.array([c.daily_amplitude for c in self.channels])
        amp_l = np.array([c.load_amplitude for c in self.channels])
        noise = np.array([c.noise for c in self.channels])
        values = base + daily * amp_d + load * amp_l + rng.standard_normal((n, len(base))) * noise
        low = np.array([c.low for c in self.channels])
        high = np.array([c.high for c in self.channels])
        return np.clip(values, low, high)


MODELS: dict[str, DeviceModel] = {
    "grid": DeviceModel(
        "GRID_GUARDIAN",
        "grid",
        (
            Channel("TEMPERATURE", "degC", 15.0, 8.0, 0.0, 0.3),
            Channel("HUMIDITY", "%", 60.0, -15.0, 0.0, 1.0, 0.0, 100.0),
            Channel("VOC", "ppb", 120.0, 20.0, 0.0, 5.0, 0.0),
            Channel("ACOUSTIC_LEVEL", "dB", 35.0, 5.0, 2.0, 1.0, 0.0),
            Channel("LINE_CURRENT", "A", 180.0, 60.0, 20.0, 3.0, 0.0),
            Channel("HOTSPOT_TEMPERATURE", "degC", 55.0, 12.0, 6.0, 0.5),
        ),
    ),
    "battery": DeviceModel(
        "BATTERY_PACK",
        "bat",
        (
            Channel("CURRENT", "A", 0.0, 20.0, 40.0, 1.0),
            Channel("VOLTAGE", "V", 384.0, 6.0, 4.0, 0.2, 0.0),
            Channel("CELL_TEMPERATURE", "degC", 28.0, 4.0, 3.0, 0.2),
            Channel("STATE_OF_CHARGE", "%", 60.0, 25.0, 5.0, 0.1, 0.0, 100.0),
        ),
        load_period_s=7_200.0,
    ),
    "vehicle": DeviceModel(
        "VEHICLE",
        "veh",
        (
            Channel("SPEED", "km/h", 45.0, 10.0, 30.0, 2.0, 0.0),
            Channel("ENGINE_RPM", "rpm", 1800.0, 200.0, 600.0, 40.0, 0.0),
            Channel("ENGINE_TEMPERATURE", "degC", 88.0, 3.0, 4.0, 0.5),
            Channel("OIL_PRESSURE", "kPa", 300.0, 10.0, 60.0, 5.0, 0.0),
            Channel("TYRE_PRESSURE", "kPa", 830.0, 8.0, 4.0, 1.0, 0.0),
        ),
        load_period_s=900.0,
    ),
    "machine": DeviceModel(
        "MACHINE",
        "mach",
        (
            Channel("VIBRATION", "mm/s", 2.5, 0.2, 0.4, 0.1, 0.0),
            Channel("BEARING_TEMPERATURE", "degC", 55.0, 3.0, 4.0, 0.3),
            Channel("PRESSURE", "bar", 6.0, 0.2, 0.8, 0.05, 0.0),
            Channel("FLOW", "m3/h", 120.0, 5.0, 25.0, 1.5, 0.0),
            Channel("MOTOR_CURRENT", "A", 42.0, 2.0, 8.0, 0.5, 0.0),
        ),
        load_period_s=1_800.0,
    ),
}


@dataclass(frozen=True)
class FleetTick:
    """The readings of one tick, as parallel sequences (one entry per reading)."""

    ts_ms: int
    device_ids: list[str]
    device_types: list[str]
    capabilities: list[str]
    units: list[str]
    values: list[float]


class Fleet:
    """``devices`` devices spread round-robin over ``kinds``; deterministic for a seed."""

    def __init__(self, devices: int, kinds: Sequence[str], seed: int = 0) -> None:
        if devices < 1:
            msg = f"devices must be >= 1, got {devices}"
            raise ValueError(msg)
        unknown = [k for k in kinds if k not in MODELS]
        if unknown or not kinds:
            msg = f"unknown device kind(s) {unknown or kinds!r}; choose from {sorted(MODELS)}"
            raise ValueError(msg)
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        per_kind: dict[str, list[str]] = {k: [] for k in kinds}
        for i in range(devices):
            kind = kinds[i % len(kinds)]
            per_kind[kind].append(f"{MODELS[kind].prefix}-{i:05d}")
        self._groups = [
            (MODELS[k], ids, self._rng.random(len(ids))) for k, ids in per_kind.items() if ids
        ]
        # The per-tick static columns are built once: only values change between ticks.
        self._static: list[tuple[list[str], list[str], list[str], list[str]]] = []
        for model, ids, _ in self._groups:
            n_ch = len(model.channels)
            self._static.append(
                (
                    [d for d in ids for _ in range(n_ch)],
                    [model.device_type] * (len(ids) * n_ch),
                    [c.capability for c in model.channels] * len(ids),
                    [c.unit for c in model.channels] * len(ids),
                )
            )

    @property
    def device_ids(self) -> list[str]:
        return [d for _, ids, _ in self._groups for d in ids]

    def channels_of(self, device_id: str) -> list[str]:
        for model, ids, _ in self._groups:
            if device_id in ids:
                return [c.capability for c in model.channels]
        msg = f"unknown device {device_id!r}"
        raise KeyError(msg)

    @property
    def readings_per_tick(self) -> int:
        return sum(len(ids) * len(m.channels) for m, ids, _ in self._groups)

    def tick(self, ts_ms: int) -> FleetTick:
        """Sample every device at event time ``ts_ms``."""
        device_ids: list[str] = []
        device_types: list[str] = []
        caps: list[str] = []
        units: list[str] = []
        values: list[float] = []
        t_s = ts_ms / 1000.0
        for (model, _, phase), static in zip(self._groups, self._static, strict=True):
            device_ids += static[0]
            device_types += static[1]
            caps += static[2]
            units += static[3]
            values += model.sample(t_s, phase, self._rng).ravel().tolist()
        return FleetTick(ts_ms, device_ids, device_types, caps, units, values)
