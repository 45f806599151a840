"""Every scenario's signature is present in its labelled phases and absent in healthy devices.

Each test runs a small fleet with every eligible device afflicted, beside its healthy twin
(same seed, no failures): physics noise comes from its own generator, so before onset the
two are identical, and every difference afterwards is the scenario's doing. Readings a
gateway held back are placed at the tick that took them, not the tick that sent them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from producers.fleet import KINDS, Fleet
from producers.scenarios import SCENARIOS

T0 = 1_767_225_600_000
STEP_MS = 60_000  # one-minute ticks: hours of degradation in a few hundred steps


@dataclass
class Series:
    values: dict[str, np.ndarray]  # sensor -> values per tick (nan = dropped)
    phase: dict[str, np.ndarray]  # device -> phase per tick ("" = healthy)


def _run(fleet: Fleet, ticks: int) -> Series:
    sensors = fleet.static.sensors
    vals = np.full((ticks, len(sensors)), np.nan)
    phase: dict[str, np.ndarray] = {d: np.full(ticks, "", dtype=object) for d in fleet.device_ids}
    for k in range(ticks):
        tick = fleet.tick(T0 + k * STEP_MS)
        taken = np.full(len(tick.rows), k) if tick.late_ticks is None else k - tick.late_ticks
        vals[taken, tick.rows] = tick.value_array
        for d, lb, j in zip(tick.device_ids, tick.labels, taken.tolist(), strict=True):
            phase[d][j] = lb["phase"] if lb else ""
    return Series({s: vals[:, i] for i, s in enumerate(sensors)}, phase)


def _pair(
    scenario: str, ticks: int, kinds: tuple[str, ...] = KINDS
) -> tuple[Fleet, Series, Series]:
    sick = Fleet(8, kinds, seed=5, scenario=scenario, failure_rate=1.0, step_s=60)
    twin = Fleet(8, kinds, seed=5, step_s=60)
    return sick, _run(sick, ticks), _run(twin, ticks)


def _ticks(scenario: str) -> int:
    sc = SCENARIOS[scenario]
    return int((1.5 * sc.onset_s + sc.precursor_s) / 60) + 60


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_labels_walk_normal_precursor_failure_and_nothing_changes_before_onset(name: str) -> None:
    fleet, sick, twin = _pair(name, _ticks(name))
    assert fleet.assignments, f"{name} afflicted no device"
    for device in fleet.device_ids:
        phases = sick.phase[device]
        if device not in fleet.assignments:
            assert set(phases) == {""}  # healthy: no label at all
            continue
        present = [p for p in phases if p]  # dropped ticks carry no label
        order = {"NORMAL": 0, "PRECURSOR": 1, "FAILURE": 2}
        ranks = [order[p] for p in present]
        if SCENARIOS[name].duration_s is not None:  # the incident ends: NORMAL again after it
            end = len(ranks) - ranks[::-1].index(2)
            assert ranks[end:] and set(ranks[end:]) == {0}, device
            ranks = ranks[:end]
        assert ranks == sorted(ranks) and ranks[0] == 0 and ranks[-1] == 2, device
        if SCENARIOS[name].precursor_s > 0:
            assert 1 in ranks
        normal = np.array([p == "NORMAL" for p in phases])
        for sensor, series in sick.values.items():
            if sensor.startswith(device + "/"):
                assert np.array_equal(series[normal], twin.values[sensor][normal]), sensor
    for device in fleet.device_ids:  # healthy devices of the sick fleet equal their twins
        if device not in fleet.assignments:
            for sensor in sick.values:
                if sensor.startswith(device + "/"):
                    assert np.array_equal(sick.values[sensor], twin.values[sensor], equal_nan=True)


def _phase_mask(series: Series, device: str, phase: str) -> np.ndarray:
    return np.array([p == phase for p in series.phase[device]])


def _slope(y: np.ndarray) -> float:
    return float(np.polyfit(np.arange(len(y)), y, 1)[0])


def test_bearing_wear_vibration_and_temperature_creep_up_in_precursor() -> None:
    fleet, sick, twin = _pair("bearing_wear", _ticks("bearing_wear"), ("machine",))
    for dev in fleet.assignments:
        pre = _phase_mask(sick, dev, "PRECURSOR")
        vib = sick.values[f"{dev}/vibration"][pre] - twin.values[f"{dev}/vibration"][pre]
        assert _slope(sick.values[f"{dev}/vibration"][pre]) > 0
        assert (
            abs(_slope(twin.values[f"{dev}/vibration"][pre]))
            < _slope(sick.values[f"{dev}/vibration"][pre]) / 3
        )
        assert vib[-1] > 2.0 and vib[0] < 0.1
        temp = sick.values[f"{dev}/bearing_temperature"] - twin.values[f"{dev}/bearing_temperature"]
        assert temp[_phase_mask(sick, dev, "FAILURE")].min() > 20


def test_thermal_runaway_temperature_rate_rises_and_voltage_sags() -> None:
    fleet, sick, twin = _pair("thermal_runaway", _ticks("thermal_runaway"), ("battery",))
    for dev in fleet.assignments:
        pre = _phase_mask(sick, dev, "PRECURSOR")
        extra = (
            sick.values[f"{dev}/cell_temperature_1"][pre]
            - twin.values[f"{dev}/cell_temperature_1"][pre]
        )
        rate = np.diff(extra)
        assert rate[len(rate) // 2 :].mean() > 2 * rate[: len(rate) // 2].mean() > 0  # accelerating
        sag = twin.values[f"{dev}/cell_voltage_1"] - sick.values[f"{dev}/cell_voltage_1"]
        assert sag[_phase_mask(sick, dev, "FAILURE")].min() > 0.5
        assert sag[pre][-1] > 0.05


def test_tyre_slow_leak_loses_pressure_on_one_tyre_only() -> None:
    fleet, sick, twin = _pair("tyre_slow_leak", _ticks("tyre_slow_leak"), ("vehicle",))
    for dev in fleet.assignments:
        ratio = sick.values[f"{dev}/tyre_pressure_fl"] / twin.values[f"{dev}/tyre_pressure_fl"]
        pre = _phase_mask(sick, dev, "PRECURSOR")
        assert _slope(ratio[pre]) < 0 and ratio[pre][-1] < 0.75
        assert np.array_equal(
            sick.values[f"{dev}/tyre_pressure_fr"], twin.values[f"{dev}/tyre_pressure_fr"]
        )


def test_transformer_overload_drives_current_and_hotspot_up() -> None:
    fleet, sick, twin = _pair("transformer_overload", _ticks("transformer_overload"), ("grid",))
    for dev in fleet.assignments:
        fail = _phase_mask(sick, dev, "FAILURE")
        assert (sick.values[f"{dev}/line_current"] / twin.values[f"{dev}/line_current"])[
            fail
        ].min() > 1.6
        hot = sick.values[f"{dev}/hotspot_temperature"] - twin.values[f"{dev}/hotspot_temperature"]
        assert hot[fail].min() > 30


def test_arcing_shows_acoustic_and_emf_bursts_then_smoke() -> None:
    fleet, sick, twin = _pair("arcing", _ticks("arcing"), ("grid",))
    for dev in fleet.assignments:
        ac = sick.values[f"{dev}/acoustic_level"] - twin.values[f"{dev}/acoustic_level"]
        pre, fail = _phase_mask(sick, dev, "PRECURSOR"), _phase_mask(sick, dev, "FAILURE")
        assert (ac[pre] > 10).any() and (ac[fail] > 10).mean() > (ac[pre] > 10).mean()
        assert (sick.values[f"{dev}/voc"] - twin.values[f"{dev}/voc"])[fail].min() > 300


def _primary(fleet: Fleet, dev: str) -> str:
    return f"{dev}/{fleet.model_of(dev).primary}"


def test_step_spike_shifts_the_level_at_onset() -> None:
    fleet, sick, twin = _pair("step_spike", _ticks("step_spike"))
    for dev in fleet.assignments:
        s = _primary(fleet, dev)
        fail = _phase_mask(sick, dev, "FAILURE")
        assert (sick.values[s] - twin.values[s])[fail].min() >= 5.0


def test_stuck_sensor_flat_lines_in_failure() -> None:
    fleet, sick, twin = _pair("stuck_sensor", _ticks("stuck_sensor"))
    for dev in fleet.assignments:
        s = _primary(fleet, dev)
        fail = _phase_mask(sick, dev, "FAILURE")
        assert np.ptp(sick.values[s][fail]) == 0 and np.ptp(twin.values[s][fail]) > 0


def test_sensor_drift_offset_grows_linearly() -> None:
    fleet, sick, twin = _pair("sensor_drift", _ticks("sensor_drift"))
    for dev in fleet.assignments:
        s = _primary(fleet, dev)
        pre = _phase_mask(sick, dev, "PRECURSOR")
        off = (sick.values[s] - twin.values[s])[pre]
        assert _slope(off) > 0 and np.all(np.diff(off) > -1e-9)


def test_dropout_leaves_gaps_in_sequence_numbers() -> None:
    fleet, sick, twin = _pair("dropout", _ticks("dropout"))
    for dev in fleet.assignments:
        s = _primary(fleet, dev)
        dropped = np.isnan(sick.values[s])  # the tick's sequence number never arrives
        first_failure = int(np.argmax(_phase_mask(sick, dev, "FAILURE")))
        assert dropped[first_failure:].mean() > 0.3
        assert not dropped[_phase_mask(sick, dev, "NORMAL")].any()
        assert not np.isnan(twin.values[s]).any()


def test_intermittent_contact_reads_open_circuit_or_spikes() -> None:
    fleet, sick, twin = _pair("intermittent_contact", _ticks("intermittent_contact"))
    for dev in fleet.assignments:
        s = _primary(fleet, dev)
        fail = _phase_mask(sick, dev, "FAILURE")
        bad = sick.values[s] != twin.values[s]
        assert 0.15 < bad[fail].mean() < 0.5
        assert (sick.values[s][fail] == 0).any()
