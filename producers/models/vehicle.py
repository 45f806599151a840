"""Fleet truck / bus: 40 metrics at 1 Hz, linked through a drive cycle, gears and heat."""

from __future__ import annotations

import numpy as np

from producers.models.base import DAY_S, Channel, DeviceModel, first_order

__all__ = ["TYRES", "Vehicle"]

TYRES = ("fl", "fr", "rl", "rr")
_GEAR_UP_KMH = np.array([0.5, 12.0, 24.0, 38.0, 52.0, 66.0])  # gear n above [n-1]
_RPM_PER_KMH = np.array([0.0, 120.0, 70.0, 46.0, 35.0, 28.0, 23.0])
IDLE_RPM = 650.0
ROUTE_RADIUS_KM = 8.0
T_REF_C = 20.0


class Vehicle(DeviceModel):
    device_type = "VEHICLE"
    prefix = "veh"
    primary = "coolant_temperature"
    channels = (
        Channel("SPEED", "km/h"),
        Channel("ENGINE_RPM", "rpm"),
        Channel("GEAR", ""),
        Channel("THROTTLE", "%"),
        Channel("ENGINE_LOAD", "%"),
        Channel("ENGINE_TEMPERATURE", "degC"),
        Channel("COOLANT_TEMPERATURE", "degC"),
        Channel("OIL_PRESSURE", "kPa"),
        Channel("OIL_TEMPERATURE", "degC"),
        Channel("TRANSMISSION_TEMPERATURE", "degC"),
        Channel("INTAKE_AIR_TEMPERATURE", "degC"),
        Channel("EXHAUST_TEMPERATURE", "degC"),
        Channel("BOOST_PRESSURE", "kPa"),
        Channel("MASS_AIR_FLOW", "g/s"),
        Channel("FUEL_LEVEL", "%"),
        Channel("FUEL_RATE", "L/h"),
        Channel("BATTERY_VOLTAGE", "V"),
        Channel("ALTERNATOR_CURRENT", "A"),
        *(Channel("TYRE_PRESSURE", "kPa", f"tyre_pressure_{t}") for t in TYRES),
        *(Channel("TYRE_TEMPERATURE", "degC", f"tyre_temperature_{t}") for t in TYRES),
        Channel("BRAKE_PAD_WEAR", "mm", "brake_pad_front"),
        Channel("BRAKE_PAD_WEAR", "mm", "brake_pad_rear"),
        Channel("BRAKE_AIR_PRESSURE", "kPa"),
        Channel("ODOMETER", "km"),
        Channel("LATITUDE", "deg"),
        Channel("LONGITUDE", "deg"),
        Channel("HEADING", "deg"),
        Channel("ALTITUDE", "m"),
        Channel("ACCELERATION", "m/s2", "acceleration_longitudinal"),
        Channel("ACCELERATION", "m/s2", "acceleration_lateral"),
        Channel("TEMPERATURE", "degC", "ambient_temperature"),
        Channel("CABIN_TEMPERATURE", "degC"),
        Channel("HUMIDITY", "%", "cabin_humidity"),
        Channel("VIBRATION", "mm/s", "chassis_vibration"),
    )

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        super().__init__(n, rng)
        self.phi = rng.uniform(0, 2 * np.pi, (2, n))
        self.v = np.zeros(n)
        self.odo = rng.uniform(5_000.0, 400_000.0, n)
        self.fuel = rng.uniform(40.0, 95.0, n)
        self.tank_l = rng.choice([300.0, 400.0], n)
        self.p_cold = rng.normal(830.0, 8.0, (n, len(TYRES)))
        self.amb0 = rng.normal(15.0, 5.0, n)
        self.lat0 = rng.uniform(45.0, 52.0, n)
        self.lon0 = rng.uniform(2.0, 12.0, n)
        self.pads = rng.uniform(8.0, 14.0, (n, 2))
        self.temps: np.ndarray | None = None  # engine, oil, transmission, tyres x4

    def step(self, t_s: float, dt_s: float) -> np.ndarray:
        n = self.n
        amb = self.amb0 + 6.0 * np.sin(2 * np.pi * (t_s / DAY_S - 0.375))
        target = 30.0 * (1 + np.sin(2 * np.pi * t_s / 900.0 + self.phi[0])) + 18.0 * np.sin(
            2 * np.pi * t_s / 173.0 + self.phi[1]
        )
        target = np.clip(target, 0.0, 90.0)
        dv = np.clip(target - self.v, -3.0 * 3.6 * dt_s, 1.5 * 3.6 * dt_s)  # km/h per step
        self.v = np.clip(self.v + dv, 0.0, None)
        v = self.v
        accel = dv / 3.6 / dt_s
        gear = np.searchsorted(_GEAR_UP_KMH, v)
        rpm = np.maximum(IDLE_RPM, v * _RPM_PER_KMH[gear]) + self.noise(15.0)
        throttle = np.clip(
            np.where(v > 0.5, 12.0 + 0.35 * v + 25.0 * np.clip(accel, 0, None), 0.0), 0, 100
        )
        load = np.clip(8.0 + 0.85 * throttle + self.noise(1.0), 0.0, 100.0)
        if self.temps is None:
            self.temps = np.column_stack(
                [np.full(n, 88.0), np.full(n, 95.0), np.full(n, 75.0)] + [amb + 10.0] * len(TYRES)
            )
        tp = self.temps
        tp[:, 0] = first_order(tp[:, 0], 86.0 + 0.08 * load, dt_s, 300.0)
        tp[:, 1] = first_order(tp[:, 1], 92.0 + 0.12 * load, dt_s, 900.0)
        tp[:, 2] = first_order(tp[:, 2], 70.0 + 0.2 * load, dt_s, 1_200.0)
        tyre_target = amb + 5.0 + 0.35 * v
        for k in range(len(TYRES)):
            tp[:, 3 + k] = first_order(tp[:, 3 + k], tyre_target, dt_s, 900.0)
        tyre_t = tp[:, 3:]
        pressure = self.p_cold * (tyre_t + 273.15) / (T_REF_C + 273.15)  # ideal gas, fixed mass
        dist_km = v * dt_s / 3600.0
        self.odo = self.odo + dist_km
        fuel_rate = 2.5 + 0.004 * load * rpm / 10.0
        self.fuel = self.fuel - fuel_rate * dt_s / 3600.0 / self.tank_l * 100.0
        self.fuel = np.where(self.fuel < 8.0, 95.0, self.fuel)  # refuelled at the depot
        braking = np.clip(-accel, 0.0, None) * v * dt_s
        self.pads = self.pads - np.column_stack([braking * 2e-7, braking * 1.2e-7])
        theta = self.odo / (2 * np.pi * ROUTE_RADIUS_KM) * 2 * np.pi
        out = np.empty((n, len(self.channels)))
        out[:, 0] = v
        out[:, 1] = rpm
        out[:, 2] = gear
        out[:, 3] = throttle
        out[:, 4] = load
        out[:, 5] = tp[:, 0] + self.noise(0.3)
        out[:, 6] = tp[:, 0] - 3.0 + self.noise(0.3)
        out[:, 7] = 100.0 + 0.15 * rpm - 0.8 * (tp[:, 1] - 95.0) + self.noise(4.0)
        out[:, 8] = tp[:, 1] + self.noise(0.3)
        out[:, 9] = tp[:, 2] + self.noise(0.3)
        out[:, 10] = amb + 8.0 + 0.05 * load + self.noise(0.3)
        out[:, 11] = 180.0 + 4.0 * load + self.noise(5.0)
        out[:, 12] = 1.6 * load + self.noise(2.0)
        out[:, 13] = rpm * (0.2 + load / 100.0) * 0.12 + self.noise(1.0)
        out[:, 14] = self.fuel
        out[:, 15] = fuel_rate + self.noise(0.1)
        out[:, 16] = np.where(rpm > 500, 27.8, 25.2) + self.noise(0.05)
        out[:, 17] = 25.0 + 0.2 * load + self.noise(1.0)
        out[:, 18:22] = pressure + self.rng.standard_normal((n, len(TYRES))) * 1.0
        out[:, 22:26] = tyre_t + self.rng.standard_normal((n, len(TYRES))) * 0.2
        out[:, 26:28] = self.pads
        out[:, 28] = 850.0 - 60.0 * ((t_s / 120.0 + self.phi[0]) % 1.0) + self.noise(3.0)
        out[:, 29] = self.odo
        out[:, 30] = self.lat0 + ROUTE_RADIUS_KM / 111.0 * np.sin(theta)
        out[:, 31] = self.lon0 + ROUTE_RADIUS_KM / (111.0 * np.cos(np.radians(self.lat0))) * (
            1 - np.cos(theta)
        )
        out[:, 32] = np.degrees(theta + np.pi / 2) % 360.0
        out[:, 33] = 60.0 + 25.0 * np.sin(3 * theta) + self.noise(1.0)
        out[:, 34] = accel + self.noise(0.05)
        out[:, 35] = (v / 3.6) ** 2 / (ROUTE_RADIUS_KM * 1000.0) + self.noise(0.05)
        out[:, 36] = amb + self.noise(0.2)
        out[:, 37] = 21.0 + 0.1 * (amb - 21.0) + self.noise(0.2)
        out[:, 38] = np.clip(40.0 + self.noise(1.5), 0, 100)
        out[:, 39] = np.abs(0.3 + 0.025 * v + self.noise(0.1))
        self.started = True
        return out
