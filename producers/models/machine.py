"""Industrial centrifugal pump driven by an induction motor (VFD), on a shift schedule."""

from __future__ import annotations

import numpy as np

from producers.models.base import DAY_S, Channel, DeviceModel, first_order

__all__ = ["PumpMotor"]

H0_M = 60.0  # shut-off head at full speed
KP = 0.0012  # pump curve: H = H0 s^2 - KP Q^2 (Q in m3/h)
H_STATIC_M = 15.0
Q_BEP = 120.0
RHO_G = 1000.0 * 9.81


class PumpMotor(DeviceModel):
    device_type = "MACHINE"
    prefix = "mach"
    primary = "pressure"
    channels = (
        Channel("VIBRATION", "mm/s"),
        Channel("VIBRATION_PEAK", "mm/s"),
        Channel("BEARING_TEMPERATURE", "degC"),
        Channel("PRESSURE", "bar"),
        Channel("FLOW", "m3/h"),
        Channel("MOTOR_CURRENT", "A"),
        Channel("TEMPERATURE", "degC", "ambient_temperature"),
    )

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        super().__init__(n, rng)
        self.phase = rng.uniform(0, 1, n)
        self.amb0 = rng.normal(24.0, 3.0, n)
        self.bearing = self.amb0 + 25.0
        self.vib0 = rng.uniform(1.2, 2.0, n)

    def step(self, t_s: float, dt_s: float) -> np.ndarray:
        amb = self.amb0 + 2.0 * np.sin(2 * np.pi * (t_s / DAY_S - 0.375))
        # Process demand: valve opening over 8-hour shifts plus a slow 30-minute cycle.
        u = (
            0.65
            + 0.2 * np.sin(2 * np.pi * (t_s / 28_800.0 + self.phase))
            + 0.1 * np.sin(2 * np.pi * t_s / 1_800.0 + self.phase)
        )
        speed = 0.85 + 0.15 * u  # VFD follows demand
        k_sys = 0.0015 / u**2
        q = np.sqrt(np.clip(H0_M * speed**2 - H_STATIC_M, 0, None) / (KP + k_sys))
        head = H0_M * speed**2 - KP * q**2
        eff = np.clip(0.8 - 0.5 * ((q - Q_BEP) / Q_BEP) ** 2, 0.3, 0.85)
        power_w = RHO_G * (q / 3600.0) * head / eff
        current = 12.0 + power_w / (np.sqrt(3) * 400.0 * 0.86 * 0.93)
        self.bearing = first_order(self.bearing, amb + 18.0 + 12.0 * speed**2, dt_s, 1_200.0)
        rms = self.vib0 + 1.5 * ((q - Q_BEP) / Q_BEP) ** 2 + 0.4 * speed + self.noise(0.08)
        out = np.empty((self.n, len(self.channels)))
        out[:, 0] = np.abs(rms)
        out[:, 1] = np.abs(rms) * (3.0 + np.abs(self.noise(0.3)))  # crest factor ~3
        out[:, 2] = self.bearing + self.noise(0.2)
        out[:, 3] = RHO_G * head / 1e5 + self.noise(0.02)
        out[:, 4] = q + self.noise(1.0)
        out[:, 5] = current + self.noise(0.3)
        out[:, 6] = amb + self.noise(0.2)
        self.started = True
        return out
