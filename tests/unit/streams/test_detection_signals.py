"""The detection stage's learned, predictive and sensor-health signals, checkpoints, feedback.

Pure: readings go straight to ``DetectionStage.observe`` (event time, 1 reading a minute).
"""

from __future__ import annotations

import math
import random
from typing import Any

from streams.alerts import AlertPolicy
from streams.detection import DetectionConfig, DetectionStage

MIN = 60_000
HOUR = 60 * MIN
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SRC = ("telemetry.readings", 0)


def _reading(device: str, i: int, value: float, capability: str, dtype: str) -> dict[str, Any]:
    ts = START + i * MIN
    return {
        "reading_id": f"{device}/{capability}@{ts}",
        "device_id": device,
        "device_type": dtype,
        "sensor_id": f"{device}/{capability}",
        "capability": capability,
        "value": value,
        "timestamp": ts,
        "sequence": i,
        "quality": "GOOD",
        "tenant_id": "default",
    }


def _stage(**config: Any) -> DetectionStage:
    cfg = DetectionConfig(**{"warmup": 600, **config})
    policy = AlertPolicy(quiet_period_ms=HOUR, repeat_interval_ms=48 * HOUR)
    return DetectionStage(cfg, policy=policy)


def _run(
    stage: DetectionStage,
    device: str,
    values: list[float],
    capability: str = "BEARING_TEMPERATURE",
    dtype: str = "MACHINE",
    first: int = 0,
) -> list[dict[str, Any]]:
    sent = []
    for i, v in enumerate(values, start=first):
        stage.observe(SRC, _reading(device, i, v, capability, dtype))
        if i % 50 == 0:
            stage.tick([SRC])
        sent += stage.take().alerts
    stage.tick([SRC])
    return sent + stage.take().alerts


def _normal(n: int, seed: int = 0, level: float = 50.0, noise: float = 0.5) -> list[float]:
    rng = random.Random(seed)
    return [level + rng.gauss(0.0, noise) for _ in range(n)]


def test_one_anomalous_reading_scores_but_does_not_alert() -> None:
    stage = _stage()
    values = _normal(900)
    values[800] = 70.0  # one wild reading (still under the 80 degC limit)
    assert _run(stage, "m1", values) == []


def test_persistent_anomalies_open_one_device_alert_that_escalates_on_a_limit() -> None:
    stage = _stage()
    values = _normal(900) + [65.0 + 0.1 * i for i in range(10)] + [96.0] * 3
    sent = _run(stage, "m1", values)
    assert [(a["state"], a["rule"], a["severity"], a["version"]) for a in sent] == [
        ("FIRING", "anomaly:BEARING_TEMPERATURE", "WARNING", 1),
        ("FIRING", "limit:BEARING_TEMPERATURE:high", "CRITICAL", 2),
    ]
    assert sent[0]["first_seen"] == START + 902 * MIN  # the 3rd anomalous reading in a row
    assert {a["alert_id"] for a in sent} == {sent[0]["alert_id"]}
    assert sent[1]["attributes"]["rules"] == (
        "anomaly:BEARING_TEMPERATURE,limit:BEARING_TEMPERATURE:high"
    )


def test_a_ramp_towards_a_limit_is_predicted_before_it_is_breached() -> None:
    stage = _stage(warmup=1_440)
    # two normal days at 50 degC, then +0.1 degC a minute: 80 degC is reached 300 min later
    ramp = [50.0 + 0.1 * i + random.Random(i).gauss(0.0, 0.2) for i in range(400)]
    sent = _run(stage, "m1", _normal(2_880, noise=0.2) + ramp)
    predicted = [a for a in sent if a["rule"] == "PREDICTED_FAILURE"]
    breach = next(a for a in sent if a["rule"].startswith("limit:"))
    assert predicted, [a["rule"] for a in sent]
    first = predicted[0]  # escalates the alert the first anomalies opened
    assert first["alert_id"] == sent[0]["alert_id"] and first["version"] == 2
    eta_s = float(first["attributes"]["time_to_failure_s"])
    predicted_at = first["last_seen"]
    crossing = START + (2_880 + 300) * MIN
    # the estimate points at the real crossing within 20 % and comes well before it
    assert abs(predicted_at + eta_s * 1000 - crossing) < 0.2 * eta_s * 1000
    assert crossing - predicted_at >= 1.5 * HOUR
    assert breach["last_seen"] > predicted_at


def test_a_daily_heating_that_stops_short_is_not_predicted() -> None:
    stage = _stage(warmup=1_440)
    # every day 10:00-18:00 the bearing warms to 75 degC at 14:00 and cools: normal (the
    # daily profile has hourly resolution: a pattern smooth at that scale is learned)
    values = []
    for i in range(4 * 1_440):
        minute = i % 1_440
        heat = 25.0 * math.sin(math.pi * (minute - 600) / 480) if 600 <= minute < 1080 else 0.0
        values.append(50.0 + heat + random.Random(i).gauss(0.0, 0.2))
    assert [a["rule"] for a in _run(stage, "m1", values)] == []


def test_a_stuck_sensor_is_reported_once() -> None:
    stage = _stage()
    sent = _run(stage, "m1", _normal(900) + [51.234] * 60)
    assert [(a["rule"], a["state"]) for a in sent] == [
        ("sensor:stuck:BEARING_TEMPERATURE", "FIRING")
    ]
    assert sent[0]["first_seen"] == START + (900 + 30) * MIN


def test_a_throttle_resting_at_zero_is_not_stuck_but_one_held_mid_range_is() -> None:
    # A vehicle waits at a light: throttle 0 (its physical floor) for 60 readings, then drives.
    driving = [max(0.0, v) for v in _normal(900, level=30.0, noise=8.0)]
    waits = driving + [0.0] * 60 + driving[:100]
    sent = _run(_stage(), "v1", waits, capability="THROTTLE", dtype="VEHICLE")
    assert [a["rule"] for a in sent if a["rule"].startswith("sensor:stuck")] == []
    # The same sensor frozen at 37.5 % is stuck.
    frozen = driving + [37.5] * 60
    sent = _run(_stage(), "v2", frozen, capability="THROTTLE", dtype="VEHICLE")
    assert [a["rule"] for a in sent if a["rule"].startswith("sensor:stuck")] == [
        "sensor:stuck:THROTTLE"
    ]


def test_a_device_losing_ticks_is_reported() -> None:
    stage = _stage()
    rng = random.Random(3)
    sent = []
    for i in range(600):
        if i > 300 and rng.random() < 0.6:
            continue  # 60 % of the ticks missing after minute 300
        stage.observe(SRC, _reading("m1", i, 50.0 + rng.gauss(0, 0.5), "FLOW", "MACHINE"))
        sent += stage.take().alerts
    assert [a["rule"] for a in sent] == ["device:gaps"]
    assert START + 300 * MIN < sent[0]["first_seen"] < START + 330 * MIN


def test_checkpoint_restores_learned_state_and_a_replay_is_not_learned_twice() -> None:
    first = _stage()
    values = _normal(700)
    _run(first, "m1", values)
    _run(first, "m2", values[:10])
    assert first.checkpoint([("elsewhere", 9)]) == []  # only devices of the given partitions
    records = first.checkpoint()
    assert sorted((src, k) for src, k, _ in records) == [(SRC, b"default/m1"), (SRC, b"default/m2")]
    assert first.checkpoint() == []  # nothing changed since
    restarted = _stage()
    pairs = [(k, v) for _, k, v in records if k == b"default/m1"]
    assert restarted.load_checkpoint([*pairs, (b"default/bad", b"not a checkpoint")], SRC) == 1
    assert restarted.device_source[("default", "m1")] == SRC
    dev = restarted.devices[("default", "m1")]
    det = dev.series["m1/BEARING_TEMPERATURE"].detector
    assert det.n_learned == 700 and det.is_warm  # no new warm-up
    _run(restarted, "m1", values[650:], first=650)  # the input replayed after the crash
    assert det.n_learned == 700


def test_false_positive_feedback_resolves_and_raises_the_threshold() -> None:
    stage = _stage()
    values = [*_normal(900), 56.0, 57.0, 56.5, 57.5, 56.0]  # ~12 sigma: anomalous
    sent = _run(stage, "m1", values)
    alert = sent[0]
    assert alert["rule"] == "anomaly:BEARING_TEMPERATURE"
    score = float(alert["attributes"]["score:BEARING_TEMPERATURE"])
    assert stage.feedback(alert["alert_id"], "false_positive", START + 910 * MIN)
    out = stage.take().alerts
    assert [(a["state"], a["attributes"]["feedback"]) for a in out] == [
        ("RESOLVED", "false_positive")
    ]
    threshold = stage.thresholds(("default", "m1"))["m1/BEARING_TEMPERATURE"]
    assert threshold > score > stage.config.threshold
    # the same deviation again is no longer an alert
    again = _run(stage, "m1", [56.0, 57.0, 56.5, 57.5, 56.0], first=905)
    assert again == []
    assert not stage.feedback("default/m1/device@0", "ack", START)  # unknown alert id


def test_ack_feedback_acknowledges() -> None:
    stage = _stage()
    sent = _run(stage, "m1", [*_normal(900), 96.0])
    assert stage.feedback(sent[0]["alert_id"], "ack", START + 901 * MIN)
    assert [a["state"] for a in stage.take().alerts] == ["ACKNOWLEDGED"]


def test_alerts_of_a_silent_partition_resolve_after_the_quiet_period_of_idle_time() -> None:
    stage = _stage()
    sent = _run(stage, "m1", [*_normal(900), 96.0])  # a limit breach at minute 900
    assert [a["state"] for a in sent] == ["FIRING"]
    stage.idle(SRC, 30 * MIN)  # half the quiet period without input: still firing
    assert stage.take().alerts == []
    stage.idle(SRC, HOUR + MIN)
    (resolved,) = stage.take().alerts
    assert resolved["state"] == "RESOLVED"
    assert resolved["resolved_at"] == START + 900 * MIN + HOUR  # last_seen + quiet period
    stage.idle(("other", 1), 10 * HOUR)  # a partition never seen: nothing to do
    assert stage.take().alerts == []


def test_devices_silent_past_the_ttl_are_forgotten_unless_an_alert_is_open() -> None:
    stage = _stage(warmup=10)
    _run(stage, "quiet", _normal(20))  # minutes 0-19, then silent
    _run(stage, "alarmed", [*_normal(19), 96.0])  # a limit breach at minute 19: FIRING
    assert stage.open_alerts
    _run(stage, "busy", _normal(10), first=60)  # the partition's event time reaches 69
    ttl = 30 * MIN
    assert stage.expire(SRC, ttl) == [(SRC, b"default/quiet")]
    assert set(stage.devices) == {("default", "alarmed"), ("default", "busy")}
    assert ("default", "quiet") not in stage.device_source
    stage.idle(SRC, 2 * HOUR)  # the alarm resolves after its quiet hour ...
    assert [a["state"] for a in stage.take().alerts] == ["RESOLVED"]
    # ... then it goes too (and, two hours of idle time later, so does the busy device)
    assert sorted(stage.expire(SRC, ttl)) == [(SRC, b"default/alarmed"), (SRC, b"default/busy")]
    assert "default/alarmed/device" not in stage.alerts
    assert stage.expire(SRC, ttl) == []
