"""Scoring alerts against labelled incidents: hand-computed figures on a tiny fleet."""

from __future__ import annotations

import doctest
import json

import pytest

import bench.scoring
from bench.scoring import (
    AlertRow,
    Incident,
    format_table,
    incidents_from_phases,
    report_json,
    score_alerts,
)

H = 3_600_000
DAY = 24 * H

# Three bearing_wear pumps and one step_spike vehicle; four healthy devices over two days.
A = Incident("m-1", "bearing_wear", onset_ms=1 * H, failure_ms=7 * H)
B = Incident("m-2", "bearing_wear", onset_ms=2 * H, failure_ms=8 * H)
C = Incident("m-3", "bearing_wear", onset_ms=1 * H, failure_ms=7 * H)
D = Incident("v-1", "step_spike", onset_ms=5 * H, failure_ms=5 * H)
HEALTHY = ["h-1", "h-2", "h-3", "h-4"]
ALERTS = [
    AlertRow("a0", "m-1", H // 2),  # before A's onset: false (unless grace >= 30 min)
    AlertRow("a1", "m-1", 2 * H),  # A detected, lead 7 - 2 = 5 h
    AlertRow("a1", "m-1", 2 * H),  # a later version of a1: counted once
    AlertRow("a2", "m-1", 3 * H),  # duplicate alert for A
    # B: no alert (missed)
    AlertRow("c1", "m-3", 9 * H),  # C detected after failure: lead 7 - 9 = -2 h
    AlertRow("d1", "v-1", 4 * H + H // 2),  # 30 min before D's onset: false without grace
    AlertRow("h1", "h-2", 10 * H),  # healthy device
]


def score(grace_ms: int = 0) -> bench.scoring.Report:
    return score_alerts(
        [A, B, C, D], HEALTHY, ALERTS, run_start_ms=0, run_end_ms=2 * DAY, grace_ms=grace_ms
    )


def test_rows_are_scenarios_sorted_then_gradual_then_overall() -> None:
    assert [r.scenario for r in score().rows] == [
        "bearing_wear",
        "step_spike",
        "gradual",
        "overall",
    ]


def test_per_scenario_figures() -> None:
    r = score().row("bearing_wear")
    assert (r.incidents, r.detected) == (3, 2)
    assert r.recall == pytest.approx(2 / 3)
    # alerts on m-1..m-3: a0, a1, a2, c1 = 4, of which a1, a2, c1 belong
    assert (r.alerts, r.true_alerts) == (4, 3)
    assert r.precision == pytest.approx(3 / 4)
    assert r.f1 == pytest.approx(2 * (3 / 4) * (2 / 3) / (3 / 4 + 2 / 3))  # 12/17
    # leads: A 5 h, C -2 h (alerted after failure)
    assert r.lead_median_h == pytest.approx(1.5)
    assert r.lead_worst_h == pytest.approx(-2.0)
    # A has 2 alerts, C has 1
    assert r.alerts_per_incident_mean == pytest.approx(1.5)
    assert r.alerts_per_incident_max == 2
    assert r.one_alert_share == pytest.approx(0.5)
    assert r.false_per_100_device_days is None


def test_alert_before_onset_is_false_and_no_detection_gives_undefined_figures() -> None:
    r = score().row("step_spike")
    assert (r.incidents, r.detected, r.alerts, r.true_alerts) == (1, 0, 1, 0)
    assert (r.recall, r.precision, r.f1) == (0.0, 0.0, 0.0)
    assert r.lead_median_h is None
    assert r.alerts_per_incident_mean is None
    assert r.one_alert_share is None


def test_overall_counts_healthy_alerts_per_100_device_days() -> None:
    report = score()
    o = report.row("overall")
    assert (o.incidents, o.detected) == (4, 2)
    assert o.recall == pytest.approx(0.5)
    # 6 distinct alerts (a0, a1, a2, c1, d1, h1), 3 belong
    assert (o.alerts, o.true_alerts) == (6, 3)
    assert o.precision == pytest.approx(0.5)
    assert o.f1 == pytest.approx(0.5)
    # 1 healthy alert / (4 devices x 2 days) x 100 = 12.5
    assert report.healthy_device_days == pytest.approx(8.0)
    assert report.healthy_alerts == 1
    assert o.false_per_100_device_days == pytest.approx(12.5)


def test_gradual_row_aggregates_only_gradual_scenarios() -> None:
    report = score()
    g, bw = report.row("gradual"), report.row("bearing_wear")
    assert g.incidents == 3
    assert (g.recall, g.precision, g.lead_median_h) == (bw.recall, bw.precision, bw.lead_median_h)
    assert g.false_per_100_device_days is None


def test_grace_lets_alerts_just_before_onset_belong() -> None:
    report = score(grace_ms=H)
    bw = report.row("bearing_wear")
    # a0 (30 min before A's onset) now belongs: A has 3 alerts, lead 7 - 0.5 = 6.5 h
    assert (bw.alerts, bw.true_alerts) == (4, 4)
    assert bw.precision == pytest.approx(1.0)
    assert bw.lead_median_h == pytest.approx((6.5 - 2.0) / 2)
    assert bw.alerts_per_incident_max == 3
    ss = report.row("step_spike")
    # d1 30 min before the step: lead 5 - 4.5 = 0.5 h
    assert (ss.recall, ss.precision, ss.lead_median_h) == (1.0, 1.0, pytest.approx(0.5))
    o = report.row("overall")
    assert o.recall == pytest.approx(3 / 4)
    assert o.precision == pytest.approx(5 / 6)
    assert o.false_per_100_device_days == pytest.approx(12.5)


def test_a_device_both_healthy_and_failing_is_an_error() -> None:
    with pytest.raises(ValueError, match="m-1"):
        score_alerts([A], ["m-1"], [], run_start_ms=0, run_end_ms=DAY)


def test_no_healthy_devices_gives_undefined_false_rate() -> None:
    o = score_alerts([A], [], [], run_start_ms=0, run_end_ms=DAY).row("overall")
    assert o.false_per_100_device_days is None
    assert (o.recall, o.precision, o.f1) == (0.0, None, 0.0)


def test_incidents_from_phases() -> None:
    rows = [
        ("m-1", "bearing_wear", "NORMAL", 0),
        ("m-1", "bearing_wear", "PRECURSOR", 1 * H),
        ("m-1", "bearing_wear", "FAILURE", 7 * H),
        ("v-1", "step_spike", "NORMAL", 0),
        ("v-1", "step_spike", "FAILURE", 5 * H),  # no precursor: onset = failure
        ("g-1", "sensor_drift", "PRECURSOR", 3 * H),  # run ended in the precursor
        ("b-1", "dropout", "NORMAL", 0),  # onset after the run: no incident
    ]
    assert incidents_from_phases(rows, run_end_ms=4 * H) == [
        Incident("g-1", "sensor_drift", 3 * H, 4 * H),
        A,
        D,
    ]
    with pytest.raises(ValueError, match="g-1"):
        incidents_from_phases(rows)


def test_report_json_is_serialisable() -> None:
    data = report_json(score())
    json.dumps(data)
    assert data["false_per_100_healthy_device_days"] == 12.5
    rows = data["rows"]
    assert isinstance(rows, dict)
    assert rows["bearing_wear"]["recall"] == round(2 / 3, 4)
    assert rows["step_spike"]["lead_median_h"] is None


def test_format_table_puts_detectors_side_by_side() -> None:
    other = score_alerts(
        [A, B, C, D], HEALTHY, [AlertRow("x", "m-2", 3 * H)], run_start_ms=0, run_end_ms=2 * DAY
    )
    text = format_table({"envirostream": score(), "isolation_forest": other})
    lines = text.splitlines()
    assert "envirostream" in lines[0] and "isolation_forest" in lines[0]
    body = lines[:-1]
    assert len({len(line) for line in body}) == 1  # fixed width
    assert [line.split()[0] for line in body[3:]] == [
        "bearing_wear",
        "step_spike",
        "gradual",
        "overall",
    ]
    bw = body[3]
    assert "0.67" in bw and "1.5/2" in bw and "-2.00" in bw
    assert lines[-1] == (
        "false alerts / 100 healthy device-days: envirostream 12.50, isolation_forest 0.00"
    )


def test_doctests() -> None:
    assert doctest.testmod(bench.scoring).failed == 0
