"""Physics sanity of the healthy device models over a simulated day (no I/O, milliseconds)."""

from __future__ import annotations

import numpy as np

from producers.models import BatteryPack, GridGuardian, PumpMotor, Vehicle
from producers.models.vehicle import IDLE_RPM, TYRES

T0_S = 1_767_225_600.0


def _run(model_cls: type, n: int, steps: int, dt_s: float, seed: int = 0) -> np.ndarray:
    model = model_cls(n, np.random.default_rng(seed))
    return np.stack([model.step(T0_S + i * dt_s, dt_s) for i in range(steps)])  # (t, n, ch)


def test_state_of_charge_stays_in_range_and_follows_the_current_sign() -> None:
    out = _run(BatteryPack, 20, 3 * 24 * 12, 300.0)  # three days, 5-minute steps
    i, soc = (
        out[:, :, BatteryPack.index("current")],
        out[:, :, BatteryPack.index("state_of_charge")],
    )
    assert soc.min() >= 0.0 and soc.max() <= 100.0
    dsoc = np.diff(soc, axis=0)
    big = np.abs(i[1:]) > 5.0
    assert big.sum() > 1000
    # Discharge (+) lowers SoC, charge (-) raises it: coulomb counting.
    assert np.all(np.sign(dsoc[big]) == -np.sign(i[1:][big]))


def test_battery_voltage_follows_its_chemistry_and_sags_under_load() -> None:
    model = BatteryPack(30, np.random.default_rng(1))
    out = np.stack([model.step(T0_S + k * 60.0, 60.0) for k in range(24 * 60)])
    cell_v = out[:, :, BatteryPack.index("cell_voltage_1")]
    assert cell_v.min() > 2.4 and cell_v.max() < 4.3
    i = out[:, :, BatteryPack.index("current")]
    temp = out[:, :, BatteryPack.index("cell_temperature_1")]
    amb = out[:, :, BatteryPack.index("ambient_temperature")]
    assert (temp - amb)[np.abs(i) > 20].mean() > (temp - amb)[np.abs(i) < 1].mean()  # I2R heat
    soh = out[:, :, BatteryPack.index("state_of_health")]
    assert np.all(np.diff(soh, axis=0) <= 0)  # health only fades


def test_tyre_pressure_tracks_tyre_temperature() -> None:
    out = _run(Vehicle, 10, 3600, 1.0)
    for t in TYRES:
        p = out[:, :, Vehicle.index(f"tyre_pressure_{t}")]
        temp = out[:, :, Vehicle.index(f"tyre_temperature_{t}")]
        for d in range(10):
            assert np.corrcoef(p[:, d], temp[:, d])[0, 1] > 0.9
            # Ideal gas at fixed air mass: P / T(K) stays constant to within sensor noise.
            ratio = p[:, d] / (temp[:, d] + 273.15)
            assert ratio.std() / ratio.mean() < 0.003


def test_speed_rpm_and_gear_are_linked() -> None:
    out = _run(Vehicle, 10, 1800, 1.0)
    speed, rpm = out[:, :, Vehicle.index("speed")], out[:, :, Vehicle.index("engine_rpm")]
    gear = out[:, :, Vehicle.index("gear")]
    assert rpm.min() > IDLE_RPM - 100 and rpm.max() < 3000
    assert speed.min() >= 0 and speed.max() <= 95
    moving = speed > 30
    assert np.all(gear[moving] >= 3)
    odo = out[:, :, Vehicle.index("odometer")]
    assert np.all(np.diff(odo, axis=0) >= 0)
    assert len(Vehicle.channels) >= 40 and np.isfinite(out).all()


def test_transformer_hotspot_follows_load_and_ambient() -> None:
    out = _run(GridGuardian, 10, 2 * 24 * 6, 600.0)  # two days, 10-minute steps
    cur = out[:, :, GridGuardian.index("line_current")]
    hot = out[:, :, GridGuardian.index("hotspot_temperature")]
    amb = out[:, :, GridGuardian.index("temperature")]
    assert np.all(hot > amb)
    for d in range(10):
        assert np.corrcoef(cur[24:, d], (hot - amb)[24:, d])[0, 1] > 0.5
    hum = out[:, :, GridGuardian.index("humidity")]
    assert hum.min() >= 0 and hum.max() <= 100
    assert np.corrcoef(amb.ravel(), hum.ravel())[0, 1] < 0  # day/night: warm air is drier


def test_pump_flow_pressure_and_current_are_consistent() -> None:
    out = _run(PumpMotor, 10, 24 * 60, 60.0)
    flow, pres = out[:, :, PumpMotor.index("flow")], out[:, :, PumpMotor.index("pressure")]
    cur = out[:, :, PumpMotor.index("motor_current")]
    assert flow.min() > 0 and pres.min() > 1.0 and pres.max() < 6.0
    for d in range(10):
        assert np.corrcoef(flow[:, d] * pres[:, d], cur[:, d])[0, 1] > 0.8  # current ~ power
    peak, rms = (
        out[:, :, PumpMotor.index("vibration_peak")],
        out[:, :, PumpMotor.index("vibration")],
    )
    assert np.all(peak > rms)
