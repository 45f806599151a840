"""``certainly_valid`` (the batch check over the columns) never passes a reading that
``check_reading`` (one by one) refuses, and passes every plain reading it accepts."""

from __future__ import annotations

import random
from typing import Any

from schemas import AvroCodec
from schemas.reading_columns import ColumnReader
from streams.validate import MAX_ID_LENGTH, EventTimeBounds, certainly_valid, check_reading

GOOD: dict[str, Any] = {
    "reading_id": "r",
    "device_id": "d",
    "sensor_id": "d/t",
    "tenant_id": "default",
    "capability": "VOC",
    "value": 1.5,
    "timestamp": 1_767_225_600_000,
}
FAULTS: list[dict[str, Any]] = [
    {"reading_id": ""},
    {"device_id": ""},
    {"sensor_id": "s" * (MAX_ID_LENGTH + 1)},
    {"tenant_id": "t" * (MAX_ID_LENGTH + 1)},
    {"device_id": "d" * MAX_ID_LENGTH},  # at the limit: fine
    {"value": float("nan")},
    {"value": float("inf")},
    {"value": -1e101},
    {"value": 1e100},  # at the limit: fine
    {"capability": "UNKNOWN"},
    {"timestamp": 1_767_225_600_000 + 301_000},  # ahead of the clock
    {"timestamp": 1_767_225_600_000 + 300_000},  # at the allowed skew: fine
    {"timestamp": -1},  # before the floor
]
BOUNDS = EventTimeBounds(floor_ms=0, max_future_ms=300_000)
NOW = 1_767_225_600_000


def test_the_batch_check_agrees_with_the_check_one_by_one() -> None:
    rng = random.Random(5)
    codec = AvroCodec()
    reader = ColumnReader(codec)
    outcomes = set()
    for _ in range(200):
        batch = [dict(GOOD) for _ in range(rng.randint(1, 20))]
        for _ in range(rng.choice([0, 0, 1, 2])):
            rng.choice(batch).update(rng.choice(FAULTS))
        cols = reader.read(codec.encode_batch("UniversalSensorReading", batch))
        for bounds in (BOUNDS, None):
            sure = certainly_valid(cols, bounds, NOW).tolist()
            one_by_one = [
                check_reading(cols.record(i), bounds, NOW) is None for i in range(len(batch))
            ]
            assert all(ok for s, ok in zip(sure, one_by_one, strict=True) if s), batch
            # exact for what the vectorised decoder read (ids over 63 bytes are the codec's)
            read = [i for i in range(len(batch)) if i not in cols.others]
            assert [sure[i] for i in read] == [one_by_one[i] for i in read], batch
            outcomes.update(sure)
    assert outcomes == {True, False}


def test_what_the_batch_check_cannot_see_is_left_to_the_check_one_by_one() -> None:
    codec = AvroCodec()
    wide = "é" * MAX_ID_LENGTH  # at the limit in characters, twice over it in bytes
    items = codec.encode_batch(
        "UniversalSensorReading", [GOOD, {**GOOD, "device_id": wide}, {**GOOD, "value": 3.0}]
    )
    cols = ColumnReader(codec).read([*items, b"junk"])
    assert certainly_valid(cols, BOUNDS, NOW).tolist() == [True, False, True, False]
    assert check_reading(cols.record(1), BOUNDS, NOW) is None  # fine, one by one
    assert cols.error(3) is not None
