"""The worker's operator feedback, detector checkpoints and idle resolution (in-memory I/O).

Feedback (``telemetry.alerts.feedback``) changes the alert it names and its offset is
committed only after the resulting alert record and checkpoint were flushed; bad feedback is
dead-lettered. Checkpoints go to the detector-state changelog on the partition of the
device's readings, and a new worker loads them instead of warming up again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP

from schemas import AvroCodec
from streams.readings import InputRecord
from tests.unit.streams.test_worker_commits import TOPIC, make_worker, reading
from topics import ALERTS, ALERTS_FEEDBACK, DLQ
from topics.definitions import detector_state_topic

CODEC = AvroCodec()
KEY = "default/m1/device"


def feedback(alert_id: str, action: str, ts: int = 99_000) -> bytes:
    return CODEC.encode(
        "AlertFeedback",
        {
            "alert_id": alert_id,
            "device_id": "m1",
            "action": action,
            "operator": "ops",
            "comment": "",
            "timestamp": ts,
        },
    )


def sent_alerts(sent: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    out = CODEC.decode_batch("Alert", [v for t, v in sent if t == ALERTS])
    return [a for a in out if isinstance(a, dict)]


def firing_worker(**overrides: Any) -> tuple[Any, Any, list, str]:
    """A worker holding one FIRING alert: machine m1's vibration over its CRITICAL limit."""
    worker, _, producer, commits = make_worker(**overrides)
    values = [2.0] * 5 + [15.0] * 3
    batch = [
        InputRecord(TOPIC, 2, i, b"m1", reading(CODEC, "m1", i * 1000, v))
        for i, v in enumerate(values)
    ]
    asyncio.run(worker.on_readings(batch))
    (fired,) = sent_alerts(producer.sent)
    assert fired["state"] == "FIRING" and fired["alert_key"] == KEY
    return worker, producer, commits, fired["alert_id"]


def test_ack_changes_the_alert_and_commits_after_it_is_produced() -> None:
    worker, producer, commits, alert_id = firing_worker()
    producer.sent.clear()
    flushes = producer.flushes
    asyncio.run(
        worker.on_feedback([InputRecord(ALERTS_FEEDBACK, 2, 40, b"m1", feedback(alert_id, "ACK"))])
    )
    asyncio.run(worker.commit())
    assert [(a["alert_id"], a["state"], a["version"]) for a in sent_alerts(producer.sent)] == [
        (alert_id, "ACKNOWLEDGED", 2)
    ]
    assert producer.flushes > flushes  # flushed before the commit below
    assert commits[-1][TP(ALERTS_FEEDBACK, 2)] == 41
    value = worker.metrics.registry.get_sample_value
    assert value("envirostream_alert_feedback_total", {"action": "ack", "outcome": "applied"}) == 1


def test_feedback_replayed_after_a_crash_changes_nothing_twice() -> None:
    worker, producer, _, alert_id = firing_worker()
    record = InputRecord(ALERTS_FEEDBACK, 2, 40, b"m1", feedback(alert_id, "FALSE_POSITIVE"))
    asyncio.run(worker.on_feedback([record]))
    asyncio.run(worker.on_feedback([record]))  # the same offset again (replay)
    states = [(a["state"], a["attributes"].get("feedback")) for a in sent_alerts(producer.sent)]
    assert states == [("FIRING", None), ("RESOLVED", "false_positive")]


def test_unknown_alerts_are_counted_and_bad_feedback_is_dead_lettered() -> None:
    worker, producer, commits, _ = firing_worker()
    producer.sent.clear()
    batch = [
        InputRecord(ALERTS_FEEDBACK, 0, 0, b"m1", feedback(f"{KEY}@123", "ACK")),  # no such id
        InputRecord(ALERTS_FEEDBACK, 0, 1, b"m1", b"\x00not avro"),
        InputRecord(ALERTS_FEEDBACK, 0, 2, b"m1", feedback(f"{KEY}@0", "UNKNOWN")),
    ]
    asyncio.run(worker.on_feedback(batch))
    asyncio.run(worker.commit())
    assert [t for t, _ in producer.sent] == [DLQ, DLQ]
    assert commits[-1][TP(ALERTS_FEEDBACK, 0)] == 3  # nothing blocks the partition
    value = worker.metrics.registry.get_sample_value
    labels = {"action": "ack", "outcome": "unknown_alert"}
    assert value("envirostream_alert_feedback_total", labels) == 1
    reasons = value("envirostream_records_dead_lettered_total", {"reason": "invalid_feedback"})
    assert reasons == 1


def test_checkpoints_go_to_the_readings_partition_and_a_new_worker_loads_them() -> None:
    worker, producer, _, _ = firing_worker(detector_warmup=5)
    asyncio.run(worker.flush_and_commit(force=True))
    topic = detector_state_topic(worker.settings)
    states = [(t, v) for t, v in producer.sent if t == topic]
    assert len(states) == 1 and (topic, 2) in producer.partitions

    fresh, _, _, _ = make_worker(detector_warmup=5)
    loaded = fresh.detection.load_checkpoint([(b"default/m1", states[0][1])], (TOPIC, 2))
    assert loaded == 1
    series = fresh.detection.devices[("default", "m1")].series["m1/v"]
    assert (
        series.detector.n_learned
        == worker.detection.devices[("default", "m1")].series["m1/v"].detector.n_learned
        > 0
    )


def test_an_idle_partition_resolves_its_quiet_alerts_on_the_housekeeping_tick() -> None:
    worker, producer, _, alert_id = firing_worker(alert_quiet_period_seconds=600)
    producer.sent.clear()
    src = (TOPIC, 2)
    asyncio.run(worker.tick())
    assert sent_alerts(producer.sent) == []  # input just arrived: not idle
    worker.last_input[src] -= 601  # ten minutes and a second without input
    asyncio.run(worker.tick())
    (resolved,) = sent_alerts(producer.sent)
    assert (resolved["alert_id"], resolved["state"]) == (alert_id, "RESOLVED")
    assert resolved["resolved_at"] == resolved["last_seen"] + 600_000


def test_expired_devices_are_deleted_from_the_changelog_with_tombstones() -> None:
    worker, producer, _, _ = firing_worker(alert_quiet_period_seconds=60, device_state_ttl_hours=1)
    assert worker.expire_devices() == 0  # m1 was just seen
    worker.last_input[(TOPIC, 2)] -= 7200  # two hours without input: the alert resolves
    asyncio.run(worker.tick())
    assert worker.expire_devices() == 1
    topic = detector_state_topic(worker.settings)
    assert (topic, None) in producer.sent and (topic, 2) in producer.partitions
    assert worker.detection.devices == {}
