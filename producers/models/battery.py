"""Battery pack: charge/discharge schedule, coulomb counting, 1-RC equivalent circuit, heat."""

from __future__ import annotations

import numpy as np

from producers.models.base import DAY_S, Channel, DeviceModel, first_order

__all__ = ["CHEMISTRIES", "BatteryPack", "ocv"]

# Open-circuit voltage per cell vs state of charge (0..1), by chemistry.
_SOC = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0])
CHEMISTRIES: dict[str, tuple[np.ndarray, int]] = {  # OCV table, cells in series
    "LFP": (np.array([2.50, 3.00, 3.15, 3.22, 3.26, 3.29, 3.31, 3.33, 3.34, 3.36, 3.60]), 120),
    "NMC": (np.array([3.00, 3.35, 3.45, 3.55, 3.62, 3.72, 3.88, 3.97, 4.06, 4.12, 4.20]), 96),
    "LCO": (np.array([3.00, 3.40, 3.55, 3.68, 3.75, 3.85, 3.98, 4.05, 4.12, 4.16, 4.20]), 96),
}
CELLS_SHOWN = 4
CAPACITY_AH = 100.0
R0_OHM = 0.0012  # per cell series resistance
R1_OHM = 0.0008  # RC pair
TAU_RC_S = 60.0
H_W_PER_K = 30.0  # pack cooling
TAU_TH_S = 1_800.0
FADE_PER_CYCLE = 0.0002  # state of health lost per equivalent full cycle


def ocv(chem: np.ndarray, soc: np.ndarray) -> np.ndarray:
    """Cell open-circuit voltage for chemistry codes ``chem`` (0 LFP, 1 NMC, 2 LCO)."""
    out = np.empty_like(soc)
    for code, (table, _) in enumerate(CHEMISTRIES.values()):
        m = chem == code
        out[m] = np.interp(soc[m], _SOC, table)
    return out


class BatteryPack(DeviceModel):
    device_type = "BATTERY_PACK"
    prefix = "bat"
    primary = "voltage"
    channels = (
        Channel("CURRENT", "A"),
        Channel("VOLTAGE", "V"),
        Channel("STATE_OF_CHARGE", "%"),
        Channel("STATE_OF_HEALTH", "%"),
        Channel("TEMPERATURE", "degC", "ambient_temperature"),
        *(Channel("CELL_VOLTAGE", "V", f"cell_voltage_{i}") for i in range(1, CELLS_SHOWN + 1)),
        *(
            Channel("CELL_TEMPERATURE", "degC", f"cell_temperature_{i}")
            for i in range(1, CELLS_SHOWN + 1)
        ),
    )

    def __init__(self, n: int, rng: np.random.Generator) -> None:
        super().__init__(n, rng)
        self.chem = rng.integers(0, len(CHEMISTRIES), n)
        self.series = np.array([s for _, s in CHEMISTRIES.values()])[self.chem]
        self.soc = rng.uniform(0.3, 0.8, n)
        self.soh = rng.uniform(0.9, 1.0, n)
        self.v_rc = np.zeros(n)
        self.c_rate = rng.uniform(0.3, 0.5, n)
        self.phase = rng.uniform(-0.05, 0.05, n)
        self.amb0 = rng.normal(22.0, 3.0, n)
        self.temp = self.amb0.copy()
        self.cell_dv = rng.normal(0.0, 0.004, (n, CELLS_SHOWN))
        self.cell_dt = rng.normal(0.0, 0.6, (n, CELLS_SHOWN))
        self.current = np.zeros(n)

    def schedule(self, t_s: float) -> np.ndarray:
        """Pack current, A (+ discharge, - charge): solar-hours charge, evening discharge."""
        hour = ((t_s / DAY_S + self.phase) % 1.0) * 24.0
        sign = np.where((hour >= 9) & (hour < 15), -1.0, 0.0)
        sign = np.where((hour >= 17) & (hour < 22), 1.0, sign)
        i = sign * self.c_rate * CAPACITY_AH
        i = np.where((i > 0) & (self.soc < 0.05), 0.0, i)
        i = np.where((i < 0) & (self.soc > 0.97), 0.0, i)
        return np.asarray(i + self.noise(0.3))

    def step(self, t_s: float, dt_s: float) -> np.ndarray:
        amb = self.amb0 + 3.0 * np.sin(2 * np.pi * (t_s / DAY_S - 0.375))
        i = self.schedule(t_s)
        cap_as = CAPACITY_AH * self.soh * 3600.0
        self.soc = np.clip(self.soc - i * dt_s / cap_as, 0.0, 1.0)
        self.soh = self.soh - FADE_PER_CYCLE * np.abs(i) * dt_s / (2 * cap_as)
        r0 = R0_OHM * (1 + 0.02 * np.clip(25.0 - self.temp, 0, None)) / self.soh
        self.v_rc = first_order(self.v_rc, i * R1_OHM, dt_s, TAU_RC_S)
        v_cell = ocv(self.chem, self.soc) - i * r0 - self.v_rc
        heat_w = i**2 * (r0 + R1_OHM) * self.series
        self.temp = first_order(self.temp, amb + heat_w / H_W_PER_K, dt_s, TAU_TH_S)
        self.current = i
        out = np.empty((self.n, len(self.channels)))
        out[:, 0] = i
        out[:, 1] = v_cell * self.series + self.noise(0.05)
        out[:, 2] = self.soc * 100.0
        out[:, 3] = self.soh * 100.0
        out[:, 4] = amb + self.noise(0.1)
        noise = self.rng.standard_normal((self.n, 2 * CELLS_SHOWN))
        out[:, 5 : 5 + CELLS_SHOWN] = (
            v_cell[:, None] + self.cell_dv + 0.002 * noise[:, :CELLS_SHOWN]
        )
        out[:, 5 + CELLS_SHOWN :] = self.temp[:, None] + self.cell_dt + 0.1 * noise[:, CELLS_SHOWN:]
        return out
