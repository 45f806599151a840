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


def paced_worker(devices: int, period: float) -> tuple[Any, list[bytes]]:
    """A worker whose ``devices`` machines each sent one reading (all changed, in order
    d00, d01, …), and the keys it writes to the detector-state changelog."""
    worker, _, producer, _ = make_worker(detector_checkpoint_seconds=period)
    batch = [
        InputRecord(TOPIC, 2, i, f"d{i:02d}".encode(), reading(CODEC, f"d{i:02d}", 1000))
        for i in range(devices)
    ]
    asyncio.run(worker.on_readings(batch))
    keys: list[bytes] = []
    topic = detector_state_topic(worker.settings)

    def send_batch(t: str, k: Any, v: Any, partitions: Any = None, **_: Any) -> None:
        if t == topic:
            keys.extend(k)

    producer.send_batch = send_batch
    return worker, keys


def test_checkpoints_are_paced_a_share_per_round_the_longest_changed_first() -> None:
    worker, keys = paced_worker(devices=20, period=10.0)
    ckpt = worker.checkpoints
    ckpt.last_paced, ckpt.credit = 100.0, 0.0
    assert asyncio.run(ckpt.paced(101.0)) == 2  # 20 devices / 10 s: two a second
    assert keys == [b"default/d00", b"default/d01"]
    assert asyncio.run(ckpt.paced(106.0)) == 10
    assert keys[2:] == [f"default/d{i:02d}".encode() for i in range(2, 12)]
    assert asyncio.run(ckpt.paced(200.0)) == 8  # a long pause: the rest, never more
    assert asyncio.run(ckpt.paced(300.0)) == 0  # nothing changed since
    assert len(keys) == len(set(keys)) == 20


def test_a_small_fleet_is_checkpointed_once_per_interval_not_every_round() -> None:
    worker, _ = paced_worker(devices=1, period=30.0)
    ckpt = worker.checkpoints
    ckpt.last_paced, ckpt.credit = 0.0, 0.0
    written = []
    for second in range(1, 62):  # a commit round a second, the device changing all along
        worker.detection.dirty[("default", "d00")] = None
        written.append(asyncio.run(ckpt.paced(float(second))))
    assert sum(written) == 2
    assert written.index(1) in (28, 29, 30)  # about 30 s after the last one


def test_a_forced_checkpoint_writes_every_changed_device_at_once() -> None:
    worker, keys = paced_worker(devices=20, period=30.0)
    asyncio.run(worker.flush_and_commit(force=True))
    assert len(keys) == 20


def test_a_false_positive_checkpoints_its_own_device_at_once_not_the_fleet() -> None:
    worker, producer, _, alert_id = firing_worker()
    others = [
        InputRecord(TOPIC, 2, 8 + i, f"d{i:02d}".encode(), reading(CODEC, f"d{i:02d}", 9000))
        for i in range(10)
    ]
    asyncio.run(worker.on_readings(others))  # ten more devices changed, not checkpointed yet
    topic = detector_state_topic(worker.settings)
    keys: list[bytes] = []

    def send_batch(t: str, k: Any, v: Any, partitions: Any = None, **_: Any) -> None:
        if t == topic:
            keys.extend(k)

    producer.send_batch = send_batch
    record = InputRecord(ALERTS_FEEDBACK, 2, 40, b"m1", feedback(alert_id, "FALSE_POSITIVE"))
    asyncio.run(worker.on_feedback([record]))
    assert keys == [b"default/m1"]
    assert ("default", "d00") in worker.detection.dirty  # left for the paced rounds
