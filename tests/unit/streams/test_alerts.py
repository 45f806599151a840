"""Alert deduplication state machine and threshold adaptation."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from streams.alerts import (
    AlertPolicy,
    AlertState,
    Observation,
    adapt_threshold,
    advance_alert,
    apply_feedback,
    tick_alert,
)

MIN = 60_000
POLICY = AlertPolicy(quiet_period_ms=15 * MIN, repeat_interval_ms=60 * MIN)
OBS = Observation(
    "acme", "bat-7", "limit:CELL_TEMPERATURE>60", "WARNING", 0, "BATTERY_PACK", "CELL_TEMPERATURE"
)
ALERT_FIELDS = {
    f["name"]
    for f in json.loads(
        (Path(__file__).parents[3] / "schemas" / "Alert.avsc").read_text(encoding="utf-8")
    )["fields"]
}


def _at(minute: int, **changes: Any) -> Observation:
    return replace(OBS, ts_ms=minute * MIN, **changes)


def _run(observations: list[Observation]) -> tuple[AlertState | None, list[dict[str, Any]]]:
    state: AlertState | None = None
    sent = []
    for obs in observations:
        state, rec = advance_alert(state, obs, POLICY)
        if rec is not None:
            sent.append(rec)
    return state, sent


def test_repeats_are_counted_not_resent() -> None:
    state, sent = _run([_at(m) for m in range(0, 30)])
    assert len(sent) == 1
    assert sent[0]["state"] == "FIRING"
    assert sent[0]["version"] == 1
    assert sent[0]["alert_key"] == "acme/bat-7/limit:CELL_TEMPERATURE>60"
    assert state is not None and state.duplicates == 29 and state.last_seen == 29 * MIN


def test_record_matches_alert_schema() -> None:
    _, sent = _run([_at(0)])
    assert set(sent[0]) == ALERT_FIELDS


def test_resent_on_escalation_and_after_repeat_interval() -> None:
    obs = [_at(0), _at(5), _at(10, severity="CRITICAL"), _at(20), _at(71)]
    state, sent = _run(obs)
    assert [(r["severity"], r["version"]) for r in sent] == [
        ("WARNING", 1),
        ("CRITICAL", 2),
        ("CRITICAL", 3),  # 61 min after the escalation was sent
    ]
    assert len({r["alert_id"] for r in sent}) == 1
    assert state is not None and state.duplicates == 4
    # a lower severity later does not de-escalate nor re-send
    state, rec = advance_alert(state, _at(72, severity="WARNING"), POLICY)
    assert rec is None and state is not None and state.severity == "CRITICAL"


def test_resolves_after_quiet_period_then_new_incident_gets_new_id() -> None:
    state, sent = _run([_at(0), _at(3)])
    assert state is not None
    state, rec = tick_alert(state, 17 * MIN, POLICY)
    assert rec is None  # 14 min quiet: not yet
    state, rec = tick_alert(state, 18 * MIN, POLICY)
    assert rec is not None
    assert (rec["state"], rec["resolved_at"], rec["version"]) == ("RESOLVED", 18 * MIN, 2)
    assert rec["alert_id"] == sent[0]["alert_id"]
    assert tick_alert(state, 99 * MIN, POLICY)[1] is None  # resolved once
    _, rec2 = advance_alert(state, _at(40), POLICY)
    assert rec2 is not None and rec2["state"] == "FIRING" and rec2["version"] == 1
    assert rec2["alert_id"] != sent[0]["alert_id"]


REOPEN = replace(POLICY, reopen_window_ms=60 * MIN)


def _resolved(policy: AlertPolicy) -> tuple[AlertState, dict[str, Any]]:
    """An alert opened at minute 0, seen at minute 3 and resolved at minute 18."""
    state: AlertState | None = None
    first: dict[str, Any] | None = None
    for obs in (_at(0), _at(3)):
        state, rec = advance_alert(state, obs, policy)
        first = first or rec
    assert state is not None and first is not None
    state, rec = tick_alert(state, 18 * MIN, policy)
    assert rec is not None and rec["state"] == "RESOLVED"
    return state, first


def test_fires_again_within_the_reopen_window_reopens_the_same_alert() -> None:
    state, first = _resolved(REOPEN)
    # 60 minutes after it resolved (minute 18): the edge of the window still reopens
    state, rec = advance_alert(state, _at(78, rule="anomaly:window"), REOPEN)
    assert rec is not None
    assert rec["alert_id"] == first["alert_id"]
    assert (rec["state"], rec["version"], rec["resolved_at"]) == ("FIRING", 3, None)
    assert (rec["first_seen"], rec["last_seen"]) == (0, 78 * MIN)
    assert rec["attributes"]["reopened"] == "1"
    assert rec["attributes"]["rules"] == f"{OBS.rule},anomaly:window"
    # it then deduplicates and resolves like any firing alert
    state, rec = advance_alert(state, _at(79), REOPEN)
    assert rec is None and state.duplicates == 3
    state, rec = tick_alert(state, 94 * MIN, REOPEN)
    assert rec is not None and rec["state"] == "RESOLVED" and rec["version"] == 4


def test_fires_again_after_the_reopen_window_opens_a_new_alert() -> None:
    state, first = _resolved(REOPEN)
    _, rec = advance_alert(state, _at(79), REOPEN)  # 61 minutes after it resolved
    assert rec is not None and rec["state"] == "FIRING" and rec["version"] == 1
    assert rec["alert_id"] != first["alert_id"] and rec["first_seen"] == 79 * MIN
    assert "reopened" not in rec["attributes"]


def test_no_reopen_window_or_false_positive_opens_a_new_alert() -> None:
    state, first = _resolved(POLICY)  # reopen_window_ms = 0: never reopens
    _, rec = advance_alert(state, _at(19), POLICY)
    assert rec is not None and rec["alert_id"] != first["alert_id"]
    state, _ = _run([_at(0)])
    assert state is not None
    state, _ = apply_feedback(state, "false_positive", 1 * MIN)
    _, rec = advance_alert(state, _at(2), REOPEN)  # the operator closed that incident
    assert rec is not None and rec["alert_id"] != first["alert_id"] and rec["version"] == 1


def test_replayed_observation_does_not_reopen_twice() -> None:
    state, _ = _resolved(REOPEN)
    state, rec = advance_alert(state, _at(30), REOPEN)
    assert rec is not None and rec["version"] == 3
    assert advance_alert(state, _at(30), REOPEN)[1] is None  # replay after a restart


def test_acknowledged_is_not_repeated_but_escalation_refires() -> None:
    state, _ = _run([_at(0)])
    assert state is not None
    state, rec = apply_feedback(state, "ack", 1 * MIN)
    assert rec is not None and rec["state"] == "ACKNOWLEDGED" and rec["version"] == 2
    assert apply_feedback(state, "ack", 2 * MIN)[1] is None
    state, rec = advance_alert(state, _at(90), POLICY)  # past the repeat interval
    assert rec is None and state is not None and state.state == "ACKNOWLEDGED"
    state, rec = advance_alert(state, _at(91, severity="CRITICAL"), POLICY)
    assert rec is not None and rec["state"] == "FIRING" and rec["version"] == 3


def test_false_positive_resolves_and_marks_feedback() -> None:
    state, _ = _run([_at(0), _at(1)])
    assert state is not None
    state, rec = apply_feedback(state, "false_positive", 5 * MIN)
    assert rec is not None
    assert rec["state"] == "RESOLVED"
    assert rec["resolved_at"] == 5 * MIN
    assert rec["attributes"] == {"feedback": "false_positive", "rules": OBS.rule}
    assert apply_feedback(state, "false_positive", 6 * MIN)[1] is None
    with pytest.raises(ValueError, match="feedback kind"):
        apply_feedback(state, "snooze", 0)  # type: ignore[arg-type]


def test_restart_from_serialised_state_neither_forgets_nor_resends() -> None:
    observations = [_at(m) for m in range(0, 20)]
    state, sent = _run(observations[:10])
    assert state is not None and len(sent) == 1
    blob = json.dumps(state.to_dict())  # what the changelogged table would hold
    restored = AlertState.from_dict(json.loads(blob))
    assert restored == state
    # after a crash the worker replays input from its last commit (minutes 5..19)
    resent = []
    for obs in observations[5:]:
        restored, rec = advance_alert(restored, obs, POLICY)
        if rec is not None:
            resent.append(rec)
    assert resent == []
    assert restored is not None and restored.duplicates == 19
    uninterrupted, _ = _run(observations)
    assert restored == uninterrupted
    restored, rec = tick_alert(restored, 40 * MIN, POLICY)
    assert rec is not None and rec["state"] == "RESOLVED" and rec["version"] == 2


def test_policy_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="quiet_period_ms"):
        AlertPolicy(quiet_period_ms=0)
    with pytest.raises(ValueError, match="reopen_window_ms"):
        AlertPolicy(reopen_window_ms=-1)


def test_adapt_threshold_raises_above_false_positive_score() -> None:
    assert adapt_threshold(6.0, 9.0) == pytest.approx(9.9)
    assert adapt_threshold(6.0, 6.1) == pytest.approx(6.71)
    assert adapt_threshold(6.0, 2.0) == pytest.approx(6.6)  # at least one step up
    assert adapt_threshold(6.0, 50.0, ceiling=12.0) == 12.0
    assert adapt_threshold(20.0, 50.0, ceiling=12.0) == 20.0  # never lowered
    assert adapt_threshold(6.0, math.nan) == 6.0
    with pytest.raises(ValueError, match="threshold"):
        adapt_threshold(0.0, 1.0)


def test_repeated_false_positives_are_capped_by_the_ceiling() -> None:
    threshold = 6.0
    for _ in range(10):
        threshold = adapt_threshold(threshold, 7.0, ceiling=20.0)
    assert 7.0 < threshold <= 20.0
