"""A batch checked at once and a batch checked reading by reading give the same results."""

from __future__ import annotations

import random
from typing import Any

from schemas import AvroCodec
from streams.detection import DetectionStage
from streams.readings import InputRecord, ReadingsProcessor
from streams.validate import EventTimeBounds

TOPIC = "telemetry.readings"
T0 = 1_767_225_600_000
NOW_S = T0 / 1000 + 3600


def _stream(codec: AvroCodec, n: int) -> list[dict[str, Any]]:
    rng = random.Random(11)
    out = []
    for i in range(n):
        device = f"m-{i % 7}"
        cap = rng.choice(["TEMPERATURE", "VIBRATION", "PRESSURE"])
        ts = T0 + i * 700 - (90_000 if i % 97 == 0 else 0)  # now and then a late one
        out.append(
            {
                "reading_id": f"{device}/{cap}@{ts}",
                "device_id": device,
                "device_type": "MACHINE",
                "sensor_id": f"{device}/{cap.lower()}",
                "capability": cap,
                "value": rng.gauss(50, 5) if i % 53 else 900.0,
                "unit": "x",
                "timestamp": ts,
                "sequence": i,
                "quality": "GOOD",
                "tenant_id": "acme",
                "attributes": {},
                "label": None,
            }
        )
    return out


def _run(batches: list[list[InputRecord]]) -> tuple[list[Any], list[Any], list[Any], Any]:
    codec = AvroCodec()
    proc = ReadingsProcessor(
        codec,
        window_ms=60_000,
        lateness_ms=5_000,
        window_label="1m",
        bounds=EventTimeBounds(floor_ms=0, max_future_ms=300_000),
        detection=DetectionStage(warmup=20),
    )
    rows, aggregates, late, detection = [], [], [], []
    dead = []
    for batch in batches:
        result = proc.process(batch, NOW_S)
        rows.extend(list(zip(*block.columns, strict=True)) for block in result.rows)
        aggregates.extend(result.aggregates)
        late.extend(result.late_windows)
        detection.append(repr(result.detection))
        dead.extend((d.record.offset, d.reason) for d in result.dead_letters)
    aggregates.extend(proc.close_all())
    return rows, aggregates, late, (detection, dead)


def test_a_bad_record_in_a_batch_changes_nothing_but_its_dead_letter() -> None:
    codec = AvroCodec()
    readings = _stream(codec, 3000)
    values = codec.encode_batch("UniversalSensorReading", readings)
    clean = [InputRecord(TOPIC, 0, 2 * i, b"k", v) for i, v in enumerate(values)]
    # The same batches with a bad record (odd offsets) after every 250th reading: those
    # batches are checked reading by reading, the clean ones at once.
    size = 400
    batches = [clean[i : i + size] for i in range(0, len(clean), size)]
    dirty_batches = []
    for batch in batches:
        dirty: list[InputRecord] = []
        for rec in batch:
            dirty.append(rec)
            i = rec.offset // 2
            if i % 250 == 0:
                bad = b"junk"
                if i % 500 == 0:
                    bad = codec.encode("UniversalSensorReading", {**readings[i], "device_id": ""})
                dirty.append(InputRecord(TOPIC, 0, 2 * i + 1, b"k", bad))
        dirty_batches.append(dirty)
    a = _run(batches)
    b = _run(dirty_batches)
    flatten = lambda rows: [r for block in rows for r in block]  # noqa: E731
    assert flatten(a[0]) == flatten(b[0]) and len(flatten(a[0])) == 3000
    assert a[1] == b[1] and len(a[1]) > 30  # aggregates
    assert a[2] == b[2] and a[2]  # late windows to correct
    assert a[3][0] == b[3][0]  # anomalies and alerts
    assert any("'is_anomaly': True" in out for out in a[3][0])
    assert a[3][1] == []
    assert b[3][1] == [
        (2 * i + 1, "not_avro" if i % 500 else "missing_field") for i in range(0, 3000, 250)
    ]


def test_each_partition_gets_its_own_rows_whichever_decoder_read_them() -> None:
    """Two partitions interleaved in one batch, a junk record between them, a reading with
    attributes and one with a label (the codec reads the first, the columns the second):
    each partition's rows are its readings, in offset order, field for field."""
    codec = AvroCodec()
    readings = _stream(codec, 40)
    readings[5] = {**readings[5], "attributes": {"site": "north"}}
    readings[8] = {**readings[8], "label": {"scenario": "leak", "phase": "FAILURE"}}
    values = codec.encode_batch("UniversalSensorReading", readings)
    batch: list[InputRecord] = []
    for i, v in enumerate(values):
        batch.append(InputRecord(TOPIC, i % 2, 100 + i, b"k", v))
        if i == 11:
            batch.append(InputRecord(TOPIC, 1, 1000, b"k", b"junk"))
    proc = ReadingsProcessor(
        codec, window_ms=60_000, lateness_ms=5_000, window_label="1m", bounds=None
    )
    result = proc.process(batch, NOW_S)
    assert [(d.record.offset, d.reason) for d in result.dead_letters] == [(1000, "not_avro")]
    by_partition = {block.source[1]: block for block in result.rows}
    assert set(by_partition) == {0, 1}
    for part, block in by_partition.items():
        mine = [r for i, r in enumerate(readings) if i % 2 == part]
        assert block.first_offset == 100 + part
        expected = [
            [r["timestamp"] for r in mine],
            [r["tenant_id"] for r in mine],
            [r["device_id"] for r in mine],
            [r["device_type"] for r in mine],
            [r["sensor_id"] for r in mine],
            [r["capability"] for r in mine],
            [r["value"] for r in mine],
            [r["unit"] for r in mine],
            [r["quality"] for r in mine],
            [r["sequence"] for r in mine],
            [r["reading_id"] for r in mine],
            [(r["label"] or {}).get("scenario", "") for r in mine],
            [(r["label"] or {}).get("phase", "") for r in mine],
            [r["attributes"] for r in mine],
        ]
        assert block.columns == expected
    assert result.accepted + result.late == 40
