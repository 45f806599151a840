"""Rules that decide whether a decoded reading may enter the pipeline.

A refused reading is dead-lettered with one of these machine-readable reasons plus a
readable message; nothing is silently dropped. ``REASONS`` is the catalogue of every
dead-letter reason of the worker (decode, validation, windows, feedback), so the
``envirostream_records_dead_lettered_total`` series of each starts at 0.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["REASONS", "check_reading"]

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
    "unknown_capability": "capability is UNKNOWN (written with a newer schema?)",
    "late": "event time is beyond the allowed lateness of its window",
    # From the feedback agent: an AlertFeedback record with an action this worker ignores.
    "invalid_feedback": "an alert feedback action other than ACK or FALSE_POSITIVE",
}


def check_reading(rec: dict[str, Any]) -> tuple[str, str] | None:
    """None when the reading is usable, else ``(reason, message)``.

    >>> check_reading({"reading_id": "r", "device_id": "d", "capability": "VOC", "value": 1.0})
    >>> check_reading({"reading_id": "r", "device_id": "", "capability": "VOC", "value": 1.0})
    ('missing_field', 'device_id is empty')
    """
    for name in ("reading_id", "device_id"):
        if not rec.get(name):
            return "missing_field", f"{name} is empty"
    value = rec.get("value")
    if not isinstance(value, float) or not math.isfinite(value):
        return "non_finite_value", f"value is {value!r}; readings must be finite numbers"
    if rec.get("capability") == "UNKNOWN":
        return "unknown_capability", "capability UNKNOWN cannot be windowed; upgrade the reader"
    return None
