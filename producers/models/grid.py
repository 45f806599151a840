"""Grid Guardian (pole / pad-mount transformer sensor unit) and its Edge Hub (gateway)."""

from __future__ import annotations

import numpy as np

from producers.models.base import DAY_S, Channel, DeviceModel, first_order

__all__ = ["EdgeHub", "GridGuardian", "ambient", "load_curve"]

RATED_RISE_K = 65.0  # hot-spot rise over ambient at rated load (IEEE C57.91 style)
HOTSPOT_EXPONENT = 1.6
HOTSPOT_TAU_S = 3_600.0


def ambient(t_s: float, base: np.ndarray) -> np.ndarray:
    """Air temperature: daily cycle peaking mid-afternoon (15:00 UTC + device offset)."""
    return np.asarray(base + 7.0 * np.sin(2 * np.pi * (t_s / DAY_S - 0.375)))


def load_curve(t_s: float, phase: np.ndarray) -> np.ndarray:
    """Per-unit feeder load: morning and evening peaks, night trough (0.35 … 0.95 pu)."""
    d = t_s / DAY_S + phase
    return np.asarray(
        0.62 + 0.2 * np.sin(2 * np.pi * (d - 0.3)) + 0.1 * np.sin(4 * np.pi * (d - 0.2))
    )


class GridGuardian(DeviceModel):
    device_type = "GRID_GUARDIAN"
    prefix = "grid"
    primary = "temperature"
    channels = (
        Channel("TEMPERATURE", "degC"),
        Channel("HUMIDITY", "%"),
        Channel("VOC", "ppb"),
        Channel("PARTICULATES", "ug/m3"),
        Channel("ACOUSTIC_LEVEL", "dB"),
        Channel("EMF", "uT"),
        Channel("LINE_CURRENT", "A"),
        Channel("VIBRATION", "mm/s"),
        Channel("TILT", "deg"),
        Channel("HOTSPOT_TEMPERATURE", "degC"),
    )

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        super().__init__(n, rng)
        self.base_t = 12.0 + 5.0 * rng.standard_normal(n)
        self.phase = 0.05 * rng.standard_normal(n)
        self.rated_a = rng.choice([200.0, 300.0, 400.0], n)
        self.tilt0 = np.abs(rng.normal(0.5, 0.4, n))
        self.distance_m = rng.uniform(2.0, 6.0, n)
        self.hotspot = np.zeros(n)

    def step(self, t_s: float, dt_s: float) -> np.ndarray:
        amb = ambient(t_s, self.base_t)
        k = load_curve(t_s, self.phase)
        target = amb + RATED_RISE_K * k**HOTSPOT_EXPONENT
        self.hotspot = (
            target if not self.started else first_order(self.hotspot, target, dt_s, HOTSPOT_TAU_S)
        )
        self.started = True
        current = k * self.rated_a
        out = np.empty((self.n, len(self.channels)))
        out[:, 0] = amb + self.noise(0.2)
        out[:, 1] = np.clip(65.0 - 2.5 * (amb - self.base_t) + self.noise(1.0), 5.0, 100.0)
        out[:, 2] = 150.0 + 2.0 * (amb - self.base_t) + self.noise(6.0)
        out[:, 3] = 12.0 * np.exp(self.noise(0.15))
        out[:, 4] = 32.0 + 8.0 * k + self.noise(0.8)  # transformer hum grows with load
        out[:, 5] = 0.2 * current / self.distance_m + self.noise(0.3)  # B = mu0 I / 2 pi r
        out[:, 6] = current + self.noise(2.0)
        out[:, 7] = np.abs(0.3 + self.noise(0.08))
        out[:, 8] = self.tilt0 + self.noise(0.03)
        out[:, 9] = self.hotspot + self.noise(0.3)
        return out


class EdgeHub(DeviceModel):
    device_type = "EDGE_HUB"
    prefix = "hub"
    primary = "temperature"
    channels = (
        Channel("TEMPERATURE", "degC"),
        Channel("HUMIDITY", "%"),
        Channel("VOLTAGE", "V"),
        Channel("CURRENT", "A"),
    )

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        super().__init__(n, rng)
        self.base_t = 12.0 + 5.0 * rng.standard_normal(n)

    def step(self, t_s: float, dt_s: float) -> np.ndarray:
        amb = ambient(t_s, self.base_t)
        self.started = True
        draw = 0.9 + 0.1 * np.sin(2 * np.pi * t_s / 600.0) + self.noise(0.02)
        out = np.empty((self.n, len(self.channels)))
        out[:, 0] = amb + 9.0 + 4.0 * draw + self.noise(0.2)  # enclosure: sun + electronics
        out[:, 1] = np.clip(45.0 - 1.5 * (amb - self.base_t) + self.noise(1.0), 5.0, 100.0)
        out[:, 2] = 48.0 - 0.4 * draw + self.noise(0.05)
        out[:, 3] = draw
        return out
