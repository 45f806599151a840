"""One valid record per schema, and single-object framing done without the codec."""

from __future__ import annotations

import io
from typing import Any

from fastavro import parse_schema, schemaless_writer

from schemas import fingerprint

READING: dict[str, Any] = {
    "reading_id": "grid-1/temperature@1700000000000",
    "device_id": "grid-1",
    "device_type": "GRID_GUARDIAN",
    "sensor_id": "grid-1/temperature",
    "capability": "TEMPERATURE",
    "value": 21.5,
    "unit": "degC",
    "timestamp": 1_700_000_000_000,
    "sequence": 7,
    "quality": "SUSPECT",
    "tenant_id": "utility-a",
    "attributes": {"site": "north"},
    "label": {"scenario": "bearing_wear", "phase": "PRECURSOR"},
}
SAMPLES: dict[str, dict[str, Any]] = {
    "UniversalSensorReading": READING,
    "WindowAggregate": {
        "window_start": 1_700_000_000_000, "window_end": 1_700_000_060_000, "window_size": "1m",
        "tenant_id": "default", "device_id": "d", "device_type": "MACHINE",
        "capability": "VIBRATION", "unit": "mm/s", "count": 60, "mean": 2.5, "min": 1.0,
        "max": 4.0, "std": 0.5, "first": 1.5, "last": 3.5, "first_ts": 1_700_000_000_000,
        "last_ts": 1_700_000_059_000,
    },
    "AnomalyScore": {
        "ts": 1_700_000_000_000, "tenant_id": "default", "device_id": "d",
        "device_type": "BATTERY_PACK", "capability": "CELL_TEMPERATURE", "detector": "zscore",
        "score": 4.2, "threshold": 3.0, "value": 61.0, "is_anomaly": True, "reading_id": "r",
    },
    "Alert": {
        "alert_id": "a1", "alert_key": "default/d/overheat", "tenant_id": "default",
        "device_id": "d", "device_type": "VEHICLE", "capability": "ENGINE_TEMPERATURE",
        "rule": "overheat", "severity": "CRITICAL", "state": "RESOLVED",
        "first_seen": 1_700_000_000_000, "last_seen": 1_700_000_100_000,
        "resolved_at": 1_700_000_200_000, "duplicates": 3, "summary": "engine hot",
        "version": 2, "attributes": {"runbook": "r1"},
    },
    "AlertFeedback": {
        "alert_id": "default/d/device@1700000000000", "tenant_id": "default", "device_id": "d",
        "action": "FALSE_POSITIVE", "operator": "ops-1", "comment": "planned test",
        "timestamp": 1_700_000_300_000,
    },
}  # fmt: skip
TIMESTAMP_FIELDS: dict[str, tuple[str, ...]] = {
    "UniversalSensorReading": ("timestamp",),
    "WindowAggregate": ("window_start", "window_end", "first_ts", "last_ts"),
    "AnomalyScore": ("ts",),
    "Alert": ("first_seen", "last_seen", "resolved_at"),
    "AlertFeedback": ("timestamp",),
}


def single_object(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    """``record`` written with ``schema`` by fastavro directly (another producer's bytes)."""
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(schema), record)
    return b"\xc3\x01" + fingerprint(schema).to_bytes(8, "little") + buf.getvalue()
