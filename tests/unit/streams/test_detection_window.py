"""The per-device window detector of the detection stage (``anomaly:window``).

Pure: readings of several series of one device go straight to ``DetectionStage.observe``
(event time, one reading a minute per series); what the stage observed is read from the
device's alert (``attributes["rules"]``) and from the anomaly records it produced.
"""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Callable
from typing import Any

import pytest

from streams.alerts import AlertPolicy, alert_key
from streams.detect import WindowMahalanobis
from streams.detection import DetectionConfig, DetectionStage

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SRC = ("telemetry.readings", 0)

Signal = Callable[[int, random.Random], dict[tuple[str, str], float]]
"""Minute index -> {(sensor, capability): value} of one tick of one device."""


def _stage(**config: Any) -> DetectionStage:
    cfg = DetectionConfig(**{"warmup": 1_440, "window_warmup": 144, **config})
    policy = AlertPolicy(quiet_period_ms=HOUR, repeat_interval_ms=48 * HOUR)
    return DetectionStage(cfg, policy=policy)


def _feed(
    stage: DetectionStage, device: str, dtype: str, signal: Signal, minutes: range, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Feed ``minutes`` of ``signal``; returns (alert records, anomaly records)."""
    rng = random.Random(seed)
    alerts: list[dict[str, Any]] = []
    anomalies: list[dict[str, Any]] = []
    for i in minutes:
        ts = START + i * MIN
        for (sensor, cap), value in signal(i, rng).items():
            stage.observe(
                SRC,
                {
                    "reading_id": f"{device}/{sensor}@{ts}",
                    "device_id": device,
                    "device_type": dtype,
                    "sensor_id": f"{device}/{sensor}",
                    "capability": cap,
                    "value": value,
                    "timestamp": ts,
                    "sequence": i,
                    "quality": "GOOD",
                    "tenant_id": "default",
                },
            )
        if i % 30 == 0:
            stage.tick([SRC])
            out = stage.take()
            alerts += out.alerts
            anomalies += out.anomalies
    stage.tick([SRC])
    out = stage.take()
    return alerts + out.alerts, anomalies + out.anomalies


def _rules(stage: DetectionStage, device: str) -> set[str]:
    state = stage.alerts.get(alert_key("default", device, "device"))
    return set(state.attributes.get("rules", "").split(",")) - {""} if state else set()


def _daily(i: int) -> float:
    return math.sin(2 * math.pi * (i % 1_440) / 1_440)


def _machine(rise: Callable[[int], float], wander: float = 0.0) -> Signal:
    """Bearing temperature, vibration and flow following one process load (a daily cycle,
    plus, with ``wander``, a slow random walk of the demand that the daily profile does not
    explain), plus ``rise(i)`` degC on bearing temperature and ``rise(i) / 10`` mm/s on
    vibration."""
    walk = [0.0]

    def signal(i: int, rng: random.Random) -> dict[tuple[str, str], float]:
        walk[0] = 0.995 * walk[0] + wander * rng.gauss(0, 1)
        load = _daily(i) + walk[0]
        r = rise(i)
        return {
            ("bearing_temperature", "BEARING_TEMPERATURE"): 50.0
            + 5.0 * load
            + 0.3 * rng.gauss(0, 1)
            + r,
            ("vibration", "VIBRATION"): 2.0 + 0.5 * load + 0.03 * rng.gauss(0, 1) + r / 10,
            ("flow", "FLOW"): 100.0 + 20.0 * load + 1.0 * rng.gauss(0, 1),
        }

    return signal


def test_correlated_rise_below_each_threshold_raises_anomaly_window() -> None:
    stage = _stage(profile_drift_threshold=0.0)  # the window alone (the drift also sees it)
    # two days to learn a machine whose demand wanders (bearing temperature +-1.5 degC and
    # vibration +-0.15 mm/s around the daily cycle, with the flow); then bearing temperature
    # rises by 2 degC and vibration by 0.2 mm/s while the flow does not: well inside each
    # signal's own range, out of line with the load
    onset = 2 * 1_440 + 600

    def rise(i: int) -> float:
        return 0.0 if i < onset else 2.0

    alerts, anomalies = _feed(
        stage, "m1", "MACHINE", _machine(rise, wander=0.03), range(onset + 60)
    )
    assert len(alerts) == 1
    assert alerts[0]["rule"] == "anomaly:window"
    assert START + onset * MIN < alerts[0]["first_seen"] <= START + (onset + 30) * MIN
    assert "m1/bearing_temperature +" in alerts[0]["summary"]
    # the per-reading detector did not see it: no single signal is extreme
    assert _rules(stage, "m1") == {"anomaly:window"}
    flagged = [a for a in anomalies if a["detector"] == "window_mahalanobis" and a["is_anomaly"]]
    assert flagged
    assert all(a["score"] >= a["threshold"] for a in flagged)


def test_healthy_correlated_daily_cycles_raise_nothing() -> None:
    stage = _stage()
    alerts, anomalies = _feed(stage, "m1", "MACHINE", _machine(lambda i: 0.0), range(4 * 1_440))
    assert alerts == []
    dev = stage.devices[("default", "m1")]
    assert (
        dev.signals["window"].model is not None and dev.signals["window"].model.is_warm
    )  # it did judge windows
    assert not [a for a in anomalies if a["is_anomaly"]]


def _truck(drift: Callable[[int], float]) -> Signal:
    """Four tyres following one tyre temperature (gas law), ``drift(i)`` kPa on the front left."""

    def signal(i: int, rng: random.Random) -> dict[tuple[str, str], float]:
        # a drive cycle (15 min) and the day warm the tyres together
        temp = 25.0 + 8.0 * _daily(i) + 6.0 * math.sin(2 * math.pi * i / 15)
        base = 830.0 * (temp + 273.15) / 293.15
        out = {
            (f"tyre_pressure_{t}", "TYRE_PRESSURE"): base + off + rng.gauss(0, 1.0)
            for t, off in (("fl", 0.0), ("fr", 4.0), ("rl", -3.0), ("rr", 2.0))
        }
        out[("tyre_pressure_fl", "TYRE_PRESSURE")] += drift(i)
        return out

    return signal


def test_one_sensor_drifting_from_its_siblings_raises_anomaly_window_first() -> None:
    stage = _stage()
    onset = 2 * 1_440 + 300

    def leak(i: int) -> float:
        return 0.0 if i < onset else -0.15 * (i - onset)  # -9 kPa an hour, ~1 % an hour

    alerts, _ = _feed(stage, "v1", "VEHICLE", _truck(leak), range(onset + 300))
    assert len(alerts) == 1  # one alert, opened by the window detector
    first = alerts[0]
    assert first["rule"] == "anomaly:window"
    assert first["capability"] == "TYRE_PRESSURE"
    assert "tyre_pressure_fl" in first["summary"]
    assert "drifts below" in first["summary"]
    # found within 2 hours, at less than 18 kPa (2 %) of leak: far from any limit, while
    # the drive cycle moves all four tyres by +-17 kPa
    assert START + onset * MIN < first["first_seen"] < START + (onset + 120) * MIN


def test_siblings_moving_together_do_not_raise_anomaly_window() -> None:
    stage = _stage()
    alerts, _ = _feed(stage, "v1", "VEHICLE", _truck(lambda i: 0.0), range(3 * 1_440 + 600))
    assert alerts == []


def test_window_state_survives_a_checkpoint() -> None:
    stage = _stage()
    _feed(stage, "m1", "MACHINE", _machine(lambda i: 0.0), range(1_440 + 120))
    records = stage.checkpoint()
    other = _stage()
    assert other.load_checkpoint([(key, value) for _, key, value in records]) == 1
    before = stage.devices[("default", "m1")].signals["window"].model
    after = other.devices[("default", "m1")].signals["window"].model
    assert before is not None and after is not None
    assert after.n_learned == before.n_learned > 0
    x = dict.fromkeys(before.features, 0.5)
    assert after.score_one(x, 0) == before.score_one(x, 0)
    assert len(pickle.dumps(after)) < 4_000  # small: three series


def test_window_can_be_switched_off() -> None:
    stage = _stage(window=False)
    _feed(stage, "m1", "MACHINE", _machine(lambda i: 0.0), range(600))
    assert "window" not in stage.devices[("default", "m1")].signals


def test_normalised_mahalanobis_is_standard_normal_whatever_the_dimension() -> None:
    for d in (2, 20):
        rng = random.Random(d)
        det = WindowMahalanobis(warmup=50, fading=0.002, normalize=True, center=False)
        names = [f"f{i}" for i in range(d)]

        def draw(rng: random.Random = rng, names: list[str] = names) -> dict[str, float]:
            common = rng.gauss(0, 1)
            return {n: common + 0.5 * rng.gauss(0, 1) for n in names}

        for i in range(2_000):
            det.learn_one(draw(), i)
        scores = sorted(det.score_one(draw(), 0) for _ in range(1_000))
        assert -0.5 < scores[500] < 0.5
        assert scores[990] < 3.5


def test_residuals_name_the_feature_that_broke_away() -> None:
    rng = random.Random(5)
    det = WindowMahalanobis(warmup=50, normalize=True)
    for i in range(1_000):
        common = rng.gauss(0, 1)
        det.learn_one({"a": common + 0.1 * rng.gauss(0, 1), "b": common, "c": -common}, i)
    # every value within 1.5 sigma of its own spread; only "a" left the others
    score, res = det.score_and_residuals({"a": 1.5, "b": 0.0, "c": 0.0})
    assert score > det.threshold
    assert max(res, key=lambda k: abs(res[k])) == "a"
    assert res["a"] > 5


def test_false_positive_feedback_raises_the_window_threshold() -> None:
    stage = _stage(profile_drift_threshold=0.0)  # the window alone (the drift also sees it)
    onset = 2 * 1_440 + 600
    alerts, _ = _feed(
        stage,
        "m1",
        "MACHINE",
        _machine(lambda i: 0.0 if i < onset else 2.0, wander=0.03),
        range(onset + 60),
    )
    assert alerts[0]["rule"] == "anomaly:window"
    dev = stage.devices[("default", "m1")]
    assert dev.signals["window"].threshold is None
    assert stage.feedback(alerts[0]["alert_id"], "false_positive", START + (onset + 61) * MIN)
    assert dev.signals["window"].threshold is not None
    assert dev.signals["window"].threshold > stage.config.window_threshold


def _pack(charge_from: Callable[[int], float], cell2_drop: Callable[[int], float]) -> Signal:
    """A battery pack: a charge at -40 A from ``charge_from(day)`` o'clock until the pack is
    full, a discharge at +40 A from 17:00 until 22:00 or until it is empty (a fifth of the
    capacity an hour either way), from 95 % at the start; four cell voltages set by the
    state of charge and the IR drop of the current, four cell temperatures warmed by it,
    and ``cell2_drop(i)`` volts off cell 2. The first morning the pack idles full, every
    later one empty: its voltages are all lower (by 0.5 V, 30 of their spreads) than at the
    same hour of day one, for hours."""
    state = {"soc": 0.95, "heat": 0.0}

    def signal(i: int, rng: random.Random) -> dict[tuple[str, str], float]:
        hour = (i % 1_440) / 60
        start = charge_from(i // 1_440)
        current = 0.0
        if start <= hour < start + 6 and state["soc"] < 0.97:
            current = -40.0
        elif 17 <= hour < 22 and state["soc"] > 0.05:
            current = 40.0
        state["soc"] -= current / 40 * 0.2 / 60
        state["heat"] += (0.0003 * current**2 - state["heat"]) / 30  # first order, 30 min
        out = {("current", "CURRENT"): current + rng.gauss(0, 0.3)}
        ocv = 3.3 + 0.6 * (state["soc"] - 0.5)
        for c, (dv, dt) in enumerate(((0.0, 0.0), (0.004, 0.5), (-0.003, -0.4), (0.002, 0.3))):
            volts = ocv + dv - 0.0012 * current + rng.gauss(0, 0.002)
            if c == 1:
                volts -= cell2_drop(i)
            out[(f"cell_voltage_{c + 1}", "CELL_VOLTAGE")] = volts
            temp = 25.0 + dt + state["heat"] + rng.gauss(0, 0.1)
            out[(f"cell_temperature_{c + 1}", "CELL_TEMPERATURE")] = temp
        return out

    return signal


def _earlier_on_day_3(day: int) -> float:
    return 9.0 if day < 2 else 7.0  # the energy schedule moves the charge two hours earlier


def test_a_pack_charging_at_another_hour_raises_nothing_while_a_cell_fault_does() -> None:
    # the pack's current is an operating state (commanded by the charger and the schedule,
    # stopped by a full pack): a charge at another hour or longer than yesterday's is not an
    # anomaly, neither on its own nor for the window (cell voltages and temperatures follow
    # it); nor are all voltages lower together on the second morning (an emptier pack)
    minutes = range(2 * 1_440 + 12 * 60)
    stage = _stage()
    alerts, anomalies = _feed(
        stage, "b1", "BATTERY_PACK", _pack(_earlier_on_day_3, lambda i: 0.0), minutes
    )
    assert alerts == [], [a["summary"] for a in alerts]
    dev = stage.devices[("default", "b1")]
    assert (
        dev.signals["window"].model is not None and dev.signals["window"].model.is_warm
    )  # it did judge the early charge
    assert dev.signals["window"].model.given == ("b1/current",)
    assert not [a for a in anomalies if a["is_anomaly"] and a["capability"] == "CURRENT"]

    # without the state offset learned when the profiles became warm (window_settle), the
    # second morning's lower voltages raise a false alert
    stage = _stage(window_settle=0)
    alerts, _ = _feed(stage, "b1", "BATTERY_PACK", _pack(_earlier_on_day_3, lambda i: 0.0), minutes)
    assert alerts and START + DAY <= alerts[0]["first_seen"] < START + DAY + HOUR

    # the same pack with an internal short in cell 2 at 06:00 on the third day (0.3 V down
    # while the pack idles) is seen at once, and the cell is named
    onset = 2 * 1_440 + 6 * 60

    def short(i: int) -> float:
        return 0.0 if i < onset else 0.3

    stage = _stage()
    alerts, _ = _feed(stage, "b2", "BATTERY_PACK", _pack(_earlier_on_day_3, short), minutes)
    assert alerts, "the shorted cell was not seen"
    first = alerts[0]
    assert START + onset * MIN < first["first_seen"] <= START + (onset + 30) * MIN
    assert first["capability"] == "CELL_VOLTAGE"
    assert "cell_voltage_2" in first["summary"]


def test_mahalanobis_given_features_are_conditioned_on_not_judged() -> None:
    rng = random.Random(3)
    det = WindowMahalanobis(warmup=50, normalize=True, center=False, given=["load"])
    plain = WindowMahalanobis(warmup=50, normalize=True, center=False)
    for _ in range(400):
        load = rng.gauss(0, 1)
        x = {"load": load, "temp": 0.8 * load + 0.3 * rng.gauss(0, 1), "vib": rng.gauss(0, 1)}
        det.learn_one(x, 0)
        plain.learn_one(x, 0)
    # a load far beyond anything seen, with the temperature it explains: the operating
    # state is unusual, the device is not
    odd_load = {"load": 12.0, "temp": 9.6, "vib": 0.0}
    assert plain.score_one(odd_load, 0) > 8.0
    assert det.score_one(odd_load, 0) < 3.0
    # the temperature out of line with the load is judged as before
    hot = {"load": 0.0, "temp": 3.0, "vib": 0.0}
    assert det.score_one(hot, 0) > 8.0
    score, residuals = det.score_and_residuals(hot)
    assert score == det.score_one(hot, 0)
    assert max(residuals, key=lambda k: abs(residuals[k])) == "temp"


def test_an_added_direction_is_normal_without_hiding_one_feature_against_the_others() -> None:
    rng = random.Random(5)
    det = WindowMahalanobis(warmup=50, normalize=True, center=False, shrink=0.01)
    for _ in range(400):
        common = rng.gauss(0, 1)
        det.learn_one({f"v{i}": common + 0.05 * rng.gauss(0, 1) for i in range(4)}, 0)
    shifted = {f"v{i}": -15.0 for i in range(4)}  # all four far lower together
    one_off = {"v0": 0.0, "v1": -2.0, "v2": 0.0, "v3": 0.0}  # one against its siblings
    assert det.score_one(shifted, 0) > 8.0
    before = det.score_one(one_off, 0)
    assert before > 8.0
    det.add_direction(shifted)
    assert det.score_one(shifted, 0) < 3.0
    assert det.score_one(one_off, 0) == pytest.approx(before, rel=0.05)
    for _ in range(1_000):  # it fades like a learned window
        common = rng.gauss(0, 1)
        det.learn_one({f"v{i}": common + 0.05 * rng.gauss(0, 1) for i in range(4)}, 0)
    assert det.score_one(shifted, 0) > 8.0
