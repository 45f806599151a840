"""The pure parts of ``bench detection``: ground truth, alerts and windows from rows.

The pipeline mode builds them from ClickHouse rows, the offline mode from the generated
readings; both must give what the simulator's labels say.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from bench.detection import (
    alerts_from_rows,
    build_incidents,
    compare_ground_truth,
    record_phases,
    window_aggregates,
)
from bench.scoring import AlertRow, Incident
from core.settings import load_settings
from producers.fleet import Fleet
from producers.models import KINDS
from producers.simulator import build_records
from streams.detection import DETECTION_SETTINGS, detection_stage_from_settings

H = 3_600_000
END = 10 * H


# -- incidents ---------------------------------------------------------------------------------
def test_build_incidents_from_phase_rows() -> None:
    rows = [
        ("b-1", "thermal_runaway", "NORMAL", 0),
        ("b-1", "thermal_runaway", "PRECURSOR", 2 * H),
        ("b-1", "thermal_runaway", "FAILURE", 5 * H),
        ("v-1", "step_spike", "NORMAL", 0),
        ("v-1", "step_spike", "FAILURE", 3 * H),
        ("m-1", "bearing_wear", "NORMAL", 0),
        ("m-1", "bearing_wear", "PRECURSOR", 8 * H),  # the run ended before FAILURE
        ("g-1", "arcing", "NORMAL", 0),  # onset after the run end
    ]
    assignments = {
        "b-1": "thermal_runaway",
        "v-1": "step_spike",
        "m-1": "bearing_wear",
        "g-1": "arcing",
        "e-1": "dropout",  # no labelled reading at all
    }
    assert build_incidents(rows, assignments, END) == [
        Incident("b-1", "thermal_runaway", 2 * H, 5 * H),
        Incident("e-1", "dropout", END, END),
        Incident("g-1", "arcing", END, END),
        Incident("m-1", "bearing_wear", 8 * H, END),
        Incident("v-1", "step_spike", 3 * H, 3 * H),
    ]


def test_build_incidents_keeps_the_earliest_time_of_a_phase() -> None:
    rows = [("v-1", "dropout", "FAILURE", 4 * H), ("v-1", "dropout", "FAILURE", 3 * H)]
    assert build_incidents(rows, {}, END) == [Incident("v-1", "dropout", 3 * H, 3 * H)]


def test_record_phases_matches_the_per_reading_labels() -> None:
    # Every device fails, early: the ticks cross NORMAL -> PRECURSOR -> FAILURE.
    fleet = Fleet(12, KINDS, seed=3, failure_rate=1.0, step_s=60)
    assert fleet.assignments  # the test needs labelled devices
    fast: dict[tuple[str, str, str], int] = {}
    slow: dict[tuple[str, str, str], int] = {}
    start = 1_767_225_600_000
    for i in range(12 * 60):  # 12 h at one tick a minute
        ts = start + i * 60_000
        tick = fleet.tick(ts)
        record_phases(tick, fleet.device_ids, fast)
        for r in build_records(tick, i, "default"):
            if r["label"] is not None:
                key = (r["device_id"], r["label"]["scenario"], r["label"]["phase"])
                slow.setdefault(key, ts)
    assert fast == slow
    assert {p for _, _, p in fast} == {"NORMAL", "PRECURSOR", "FAILURE"}
    assert {d for d, _, _ in fast} == set(fleet.assignments)


# -- alerts ------------------------------------------------------------------------------------
def test_alerts_from_rows_one_per_alert_id() -> None:
    rows = [
        ("default/m-1/device@7200000", "m-1", 7_200_000, "anomaly:VIBRATION", "WARNING"),
        ("default/m-1/device@100", "m-1", 100, "limit:VIBRATION:high", "CRITICAL"),
        ("default/m-1/device@100", "m-1", 50, "limit:VIBRATION:high", "CRITICAL"),
        ("default/b-1/device@300", "b-1", 300, "device:gaps", "WARNING"),
    ]
    assert alerts_from_rows(rows) == [
        AlertRow("default/b-1/device@300", "b-1", 300, "device:gaps", "WARNING"),
        AlertRow("default/m-1/device@100", "m-1", 50, "limit:VIBRATION:high", "CRITICAL"),
        AlertRow("default/m-1/device@7200000", "m-1", 7_200_000, "anomaly:VIBRATION", "WARNING"),
    ]


# -- windows -----------------------------------------------------------------------------------
def test_window_aggregates_mean_and_population_std() -> None:
    values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]  # mean 5, population std 2
    sums: dict[tuple[str, str, str, int], tuple[int, float, float]] = {
        ("m-1", "MACHINE", "VIBRATION", 0): (
            len(values),
            sum(values),
            sum(v * v for v in values),
        ),
        ("m-1", "MACHINE", "FLOW", 300_000): (1, 3.0, 9.0),
        ("m-1", "MACHINE", "EMPTY", 600_000): (0, 0.0, 0.0),  # skipped
    }
    rows = {r["capability"]: r for r in window_aggregates(sums)}
    assert set(rows) == {"VIBRATION", "FLOW"}
    vib = rows["VIBRATION"]
    assert (vib["device_id"], vib["device_type"], vib["window_start_ms"]) == ("m-1", "MACHINE", 0)
    assert vib["count"] == 8
    assert vib["mean"] == pytest.approx(5.0)
    assert vib["std"] == pytest.approx(2.0)
    assert rows["FLOW"]["std"] == 0.0
    assert math.isnan(rows["FLOW"]["min"])


# -- ground-truth cross-check ------------------------------------------------------------------
def test_compare_ground_truth_names_the_differences() -> None:
    sim = [("b-1", "thermal_runaway", "PRECURSOR", 10), ("b-1", "thermal_runaway", "FAILURE", 40)]
    assert compare_ground_truth(list(sim), sim) == []
    stored = [sim[0], ("b-1", "thermal_runaway", "FAILURE", 41), sim[0]]
    problems = compare_ground_truth(stored, sim)
    assert len(problems) == 3
    assert problems[0].startswith("1 duplicate")
    assert "only in ClickHouse" in problems[1] and "41" in problems[1]
    assert "only in the simulator" in problems[2] and "40" in problems[2]


# -- the private worker's detection settings ---------------------------------------------------
def test_detection_fields_carry_every_detection_setting() -> None:
    custom = load_settings(
        {},
        detector_warmup=77,
        detector_threshold=4.5,
        detector_persistence=2,
        detector_likelihood="all",
        detector_likelihood_threshold=5.5,
        detector_window_model="hst",
        predict_horizon_seconds=1234,
        anomaly_sample_every=9,
        alert_quiet_period_seconds=120,
        alert_quiet_intervals=3,
        alert_repeat_interval_seconds=600,
        alert_reopen_seconds=900,
        device_offline_factor=4,
        device_offline_min_seconds=30,
        detector_joint=True,
        detector_joint_threshold=2.5,
    )
    copied = load_settings({}, **{f: getattr(custom, f) for f in DETECTION_SETTINGS})
    default = detection_stage_from_settings(load_settings({}))
    a, b = detection_stage_from_settings(custom), detection_stage_from_settings(copied)
    assert (a.config, a.policy) == (b.config, b.policy)
    assert a.config != default.config and a.policy != default.policy
    # Every listed field matters: changing it alone changes the stage.
    changed: defaultdict[str, bool] = defaultdict(bool)
    for f in DETECTION_SETTINGS:
        s = detection_stage_from_settings(load_settings({}, **{f: getattr(custom, f)}))
        changed[f] = (s.config, s.policy) != (default.config, default.policy)
    assert all(changed.values()), changed
