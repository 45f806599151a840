"""Late readings are rows, and windows they change are named for a correction."""

from __future__ import annotations

from typing import Any

from schemas import AvroCodec
from streams.readings import InputRecord, LateWindow, ReadingsProcessor
from streams.validate import EventTimeBounds

TOPIC = "telemetry.readings"
MINUTE = 60_000
T0 = 1_767_225_600_000  # 2026-01-01


def record(codec: AvroCodec, offset: int, ts: int, value: float = 1.0) -> InputRecord:
    rec: dict[str, Any] = {
        "reading_id": f"d@{ts}",
        "device_id": "d",
        "device_type": "MACHINE",
        "sensor_id": "d/t",
        "capability": "TEMPERATURE",
        "value": value,
        "unit": "degC",
        "timestamp": ts,
        "sequence": offset,
        "quality": "GOOD",
        "tenant_id": "acme",
        "attributes": {},
        "label": None,
    }
    return InputRecord(TOPIC, 0, offset, b"d", codec.encode("UniversalSensorReading", rec))


def processor(codec: AvroCodec, **kw: Any) -> ReadingsProcessor:
    bounds = EventTimeBounds(floor_ms=0, max_future_ms=300_000)
    return ReadingsProcessor(
        codec, window_ms=MINUTE, lateness_ms=0, window_label="1m", bounds=bounds, **kw
    )


def test_a_late_reading_is_a_row_and_names_its_window() -> None:
    codec = AvroCodec()
    p = processor(codec)
    first = p.process([record(codec, i, T0 + i * MINUTE) for i in range(3)], T0 / 1000 + 600)
    assert [a["window_start"] for a in first.aggregates] == [T0, T0 + MINUTE]
    late = p.process([record(codec, 3, T0 + 30_000, 9.0)], T0 / 1000 + 600)
    assert late.late == 1 and late.accepted == 0
    assert late.rows[0].columns[6] == [9.0]  # stored like any other reading
    assert late.late_windows == [LateWindow((TOPIC, 0), 3, "acme", "d", "TEMPERATURE", T0)]


def test_beyond_the_horizon_a_late_reading_is_stored_only() -> None:
    codec = AvroCodec()
    p = processor(codec, correction_horizon_ms=10 * MINUTE)
    p.process([record(codec, 0, T0 + 60 * MINUTE)], T0 / 1000 + 7200)
    late = p.process([record(codec, 1, T0)], T0 / 1000 + 7200)
    assert late.late == 1 and len(late.rows[0].columns[0]) == 1
    assert late.late_windows == []


def test_after_a_restart_the_first_window_of_a_device_is_rechecked() -> None:
    codec = AvroCodec()
    restarted = processor(codec)  # replays from the committed offset: a late reading first
    result = restarted.process(
        [record(codec, 7, T0 + 30_000, 9.0), record(codec, 8, T0 + 5 * MINUTE)], T0 / 1000 + 600
    )
    assert [a["window_start"] for a in result.aggregates] == [T0]
    assert result.late_windows == [LateWindow((TOPIC, 0), 7, "acme", "d", "TEMPERATURE", T0)]


def test_clock_faults_are_dead_letters_that_move_no_clock() -> None:
    codec = AvroCodec()
    p = processor(codec)
    now_s = T0 / 1000 + 600
    result = p.process(
        [record(codec, 0, T0), record(codec, 1, 2**63 - 1), record(codec, 2, T0 + 1_000)], now_s
    )
    assert [d.reason for d in result.dead_letters] == ["future_timestamp"]
    assert result.accepted == 2 and result.aggregates == []  # nothing closed by the fault


def test_finite_values_whose_statistics_would_overflow_are_refused() -> None:
    codec = AvroCodec()
    p = processor(codec)
    result = p.process(
        [record(codec, 0, T0, 1e308), record(codec, 1, T0 + 1, -1e308), record(codec, 2, T0 + 2)],
        T0 / 1000 + 600,
    )
    assert [d.reason for d in result.dead_letters] == ["value_out_of_range"] * 2
    closed = p.process([record(codec, 3, T0 + 5 * MINUTE)], T0 / 1000 + 600).aggregates
    assert [(a["count"], a["mean"], a["std"]) for a in closed] == [(1, 1.0, 0.0)]


def test_a_gateway_flush_after_an_idle_close_raises_no_gap_alert() -> None:
    from streams.detection import DetectionStage

    codec = AvroCodec()
    stage = DetectionStage()
    p = processor(codec, detection=stage)
    now_s = T0 / 1000 + 3_600

    def tick(i: int) -> InputRecord:  # one tick a second, a value that moves
        return record(codec, i, T0 + i * 1000, 40.0 + (i % 7) * 0.1)

    quiet = p.process([tick(i) for i in range(400)], now_s)
    assert quiet.detection.alerts == []
    p.close_idle(now_s + 60, idle_s=30)  # the uplink dropped: its windows were closed
    # The gateway flushes the ticks it held (the first ones fall in a closed window: late),
    # then sends on time again.
    result = p.process([tick(i) for i in range(400, 700)], now_s + 120)
    assert result.late > 0
    rules = [a["rule"] for a in result.detection.alerts]
    assert "device:gaps" not in rules, rules
