"""``all_valid`` (the batch check) agrees with ``check_reading`` (one by one)."""

from __future__ import annotations

import random
from typing import Any

from streams.validate import MAX_ID_LENGTH, EventTimeBounds, all_valid, check_reading

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
    {"value": 3},  # an int is not a reading's value
    {"capability": "UNKNOWN"},
    {"timestamp": 1_767_225_600_000 + 301_000},  # ahead of the clock
    {"timestamp": 1_767_225_600_000 + 300_000},  # at the allowed skew: fine
    {"timestamp": -1},  # before the floor
    {"timestamp": None},
]
BOUNDS = EventTimeBounds(floor_ms=0, max_future_ms=300_000)
NOW = 1_767_225_600_000


def test_all_valid_is_true_exactly_when_every_reading_passes() -> None:
    rng = random.Random(5)
    outcomes = set()
    for _ in range(400):
        batch = [dict(GOOD) for _ in range(rng.randint(1, 20))]
        for _ in range(rng.choice([0, 0, 1, 2])):
            rng.choice(batch).update(rng.choice(FAULTS))
        for bounds in (BOUNDS, None):
            one_by_one = all(check_reading(r, bounds, NOW) is None for r in batch)
            assert all_valid(batch, bounds, NOW) == one_by_one, batch
            outcomes.add(one_by_one)
    assert outcomes == {True, False}


def test_an_empty_batch_or_a_decode_error_is_checked_one_by_one() -> None:
    assert all_valid([]) is False
    assert all_valid([GOOD, ValueError("not a record")]) is False
    assert all_valid([GOOD, {k: v for k, v in GOOD.items() if k != "sensor_id"}]) is False
