"""Rules that decide whether a decoded reading may enter the pipeline.

A refused reading is dead-lettered with one of these machine-readable reasons plus a
readable message; nothing is silently dropped. ``REASONS`` is the catalogue of every
dead-letter reason of the worker (decode, validation, windows, feedback), so the
``envirostream_records_dead_lettered_total`` series of each starts at 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from schemas.reading_columns import ReadingColumns

__all__ = [
    "MAX_ABS_VALUE",
    "MAX_ID_LENGTH",
    "REASONS",
    "EventTimeBounds",
    "certainly_valid",
    "check_reading",
]

MAX_ID_LENGTH = 256  # characters of reading_id, device_id, sensor_id, tenant_id
# Beyond this magnitude a window's running variance (squares of differences) can overflow
# to infinity; no sensor reports such a number.
MAX_ABS_VALUE = 1e100

REASONS = {
    # From the codec (schemas.DecodeError.reason): the bytes are not a readable reading.
    "decode_error": "bytes that cannot be read as a record (no more specific reason)",
    "not_avro": "no Avro single-object / Confluent header",
    "corrupt_body": "truncated or malformed Avro body, or bytes after the record",
    "unknown_fingerprint": "written with a schema this reader does not know",
    "wrong_record_type": "a record of another type (e.g. an Alert) on the readings topic",
    "incompatible_schema": "the writer schema has a field or symbol the reader cannot map",
    "unknown_schema_id": "Confluent framing with a schema id the registry does not know",
    "no_registry": "Confluent framing but no ENVIROSTREAM_SCHEMA_REGISTRY_URL is set",
    "registry_refused": "the schema registry refused the schema id lookup",
    "missing_field": "a required field is empty",
    "non_finite_value": "value is NaN or infinite",
    "value_out_of_range": "a magnitude above 1e100, whose window statistics would overflow",
    "unknown_capability": "capability is UNKNOWN (written with a newer schema?)",
    "oversized_field": f"an id longer than {MAX_ID_LENGTH} characters",
    "future_timestamp": "event time further ahead of the wall clock than the allowed skew",
    "implausible_timestamp": "event time before the floor ENVIROSTREAM_EVENT_TIME_FLOOR",
    # From the feedback agent: an AlertFeedback record with an action this worker ignores.
    "invalid_feedback": "an alert feedback action other than ACK or FALSE_POSITIVE",
}


@dataclass(frozen=True)
class EventTimeBounds:
    """The event times a reading may carry: from ``floor_ms`` to the worker's wall clock plus
    ``max_future_ms``. A reading outside them is a clock fault: it is quarantined and never
    moves any event-time clock.

    >>> bounds = EventTimeBounds(floor_ms=0, max_future_ms=300_000)
    >>> bounds.check(1_000, now_ms=2_000) is None
    True
    >>> bounds.check(2**63 - 1, now_ms=2_000)[0]
    'future_timestamp'
    >>> bounds.check(-5, now_ms=2_000)[0]
    'implausible_timestamp'
    """

    floor_ms: int
    max_future_ms: int

    def check(self, ts: int, now_ms: int) -> tuple[str, str] | None:
        if ts > now_ms + self.max_future_ms:
            ahead_s = (ts - now_ms) / 1000
            return "future_timestamp", (
                f"event time {ts} is {ahead_s:.0f} s ahead of the wall clock "
                f"(allowed {self.max_future_ms / 1000:.0f} s, ENVIROSTREAM_MAX_FUTURE_SECONDS)"
            )
        if ts < self.floor_ms:
            return "implausible_timestamp", (
                f"event time {ts} is before the floor {self.floor_ms} "
                "(ENVIROSTREAM_EVENT_TIME_FLOOR)"
            )
        return None


def check_reading(
    rec: dict[str, Any], bounds: EventTimeBounds | None = None, now_ms: int = 0
) -> tuple[str, str] | None:
    """None when the reading is usable, else ``(reason, message)``.

    ``bounds`` (with the wall clock ``now_ms``) also refuses clock faults.

    >>> check_reading({"reading_id": "r", "device_id": "d", "capability": "VOC", "value": 1.0})
    >>> check_reading({"reading_id": "r", "device_id": "", "capability": "VOC", "value": 1.0})
    ('missing_field', 'device_id is empty')
    >>> check_reading({"reading_id": "r", "device_id": "d" * 300, "value": 1.0})[0]
    'oversized_field'
    >>> check_reading({"reading_id": "r", "device_id": "d", "value": 1e308})[0]
    'value_out_of_range'
    """
    for name in ("reading_id", "device_id"):
        if not rec.get(name):
            return "missing_field", f"{name} is empty"
    for name in ("reading_id", "device_id", "sensor_id", "tenant_id"):
        text = rec.get(name)
        if isinstance(text, str) and len(text) > MAX_ID_LENGTH:
            return "oversized_field", (
                f"{name} has {len(text)} characters; the limit is {MAX_ID_LENGTH}"
            )
    value = rec.get("value")
    if not isinstance(value, float) or not math.isfinite(value):
        return "non_finite_value", f"value is {value!r}; readings must be finite numbers"
    if abs(value) > MAX_ABS_VALUE:
        return "value_out_of_range", (
            f"value {value!r} exceeds ±{MAX_ABS_VALUE:g}: its window statistics would overflow"
        )
    if rec.get("capability") == "UNKNOWN":
        return "unknown_capability", "capability UNKNOWN cannot be windowed; upgrade the reader"
    if bounds is not None:
        ts = rec.get("timestamp")
        if not isinstance(ts, int):
            return "missing_field", f"timestamp is {ts!r}; expected milliseconds since the epoch"
        return bounds.check(ts, now_ms)
    return None


def certainly_valid(
    cols: ReadingColumns, bounds: EventTimeBounds | None = None, now_ms: int = 0
) -> np.ndarray:
    """Per item of ``cols``: True where :func:`check_reading` surely passes it, judged over
    the batch at once from the columns; False means: check that one by one (an item the
    codec read rather than the vectorised decoder is always False, as is a decode error).

    >>> from schemas import AvroCodec
    >>> from schemas.reading_columns import ColumnReader
    >>> codec = AvroCodec()
    >>> good = {"reading_id": "r", "device_id": "d", "capability": "VOC", "value": 1.0,
    ...         "sensor_id": "s", "tenant_id": "t", "timestamp": 5}
    >>> items = [codec.encode("UniversalSensorReading", r) for r in (good, {**good, "value":
    ...          float("nan")}, {**good, "timestamp": 30})]
    >>> cols = ColumnReader(codec).read(items)
    >>> certainly_valid(cols).tolist(), certainly_valid(cols, EventTimeBounds(0, 0), 20).tolist()
    ([True, False, True], [True, False, False])
    """
    ok = (cols.key_bytes > 0) & (cols.id_bytes <= MAX_ID_LENGTH)
    ok &= np.abs(cols.values) <= MAX_ABS_VALUE  # NaN fails every comparison
    if bounds is not None:
        ok &= (cols.times >= bounds.floor_ms) & (cols.times <= now_ms + bounds.max_future_ms)
    if "UNKNOWN" in cols.capability:
        ok &= np.array([c != "UNKNOWN" for c in cols.capability], dtype=bool)
    return ok
