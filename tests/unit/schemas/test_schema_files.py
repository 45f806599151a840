"""The .avsc files: the field names others code against, shared named types, enum order."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import avro.schema
import pytest

from schemas import SCHEMA_NAMES, load_schema

FIELDS = {
    "UniversalSensorReading": [
        "reading_id", "device_id", "device_type", "sensor_id", "capability", "value", "unit",
        "timestamp", "sequence", "quality", "tenant_id", "attributes", "label",
    ],
    "WindowAggregate": [
        "window_start", "window_end", "window_size", "tenant_id", "device_id", "device_type",
        "capability", "unit", "count", "mean", "min", "max", "std", "first", "last",
        "first_ts", "last_ts",
    ],
    "AnomalyScore": [
        "ts", "tenant_id", "device_id", "device_type", "capability", "detector", "score",
        "threshold", "value", "is_anomaly", "reading_id",
    ],
    "Alert": [
        "alert_id", "alert_key", "tenant_id", "device_id", "device_type", "capability", "rule",
        "severity", "state", "first_seen", "last_seen", "resolved_at", "duplicates", "summary",
        "version", "attributes",
    ],
    "AlertFeedback": [
        "alert_id", "tenant_id", "device_id", "action", "operator", "comment", "timestamp",
    ],
}  # fmt: skip
CAPABILITIES = [
    "UNKNOWN",
    "GENERIC",
    "TEMPERATURE",
    "HUMIDITY",
    "VOC",
    "PARTICULATES",
    "ACOUSTIC_LEVEL",
    "VIBRATION",
    "VIBRATION_PEAK",
    "TILT",
    "EMF",
    "LINE_CURRENT",
    "HOTSPOT_TEMPERATURE",
    "VOLTAGE",
    "CURRENT",
    "CELL_VOLTAGE",
    "CELL_TEMPERATURE",
    "STATE_OF_CHARGE",
    "STATE_OF_HEALTH",
    "SPEED",
    "ENGINE_RPM",
    "ENGINE_TEMPERATURE",
    "COOLANT_TEMPERATURE",
    "OIL_PRESSURE",
    "TYRE_PRESSURE",
    "TYRE_TEMPERATURE",
    "BATTERY_VOLTAGE",
    "FUEL_LEVEL",
    "BRAKE_PAD_WEAR",
    "ODOMETER",
    "LATITUDE",
    "LONGITUDE",
    "BEARING_TEMPERATURE",
    "PRESSURE",
    "FLOW",
    "MOTOR_CURRENT",
]


def _named_types(schema: Any, namespace: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema, list):
        for s in schema:
            _named_types(s, namespace, out)
    elif isinstance(schema, dict):
        if schema.get("type") in {"record", "enum", "fixed"}:
            namespace = schema.get("namespace", namespace)
            out[f"{namespace}.{schema['name']}"] = schema
        for f in schema.get("fields", []):
            _named_types(f["type"], namespace, out)
        for key in ("items", "values"):
            if key in schema:
                _named_types(schema[key], namespace, out)
    return out


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_fields_are_the_agreed_names_in_order(name: str) -> None:
    schema = load_schema(name)
    assert schema["namespace"] == "io.envirostream"
    assert [f["name"] for f in schema["fields"]] == FIELDS[name]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_each_file_stands_alone_for_apache_avro(name: str) -> None:
    text = resources.files("schemas").joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    parsed = avro.schema.parse(text)
    assert isinstance(parsed, avro.schema.RecordSchema)
    assert parsed.fullname == f"io.envirostream.{name}"


def test_shared_named_types_are_identical_in_every_file() -> None:
    seen: dict[str, tuple[str, Any]] = {}
    for name in SCHEMA_NAMES:
        for fullname, definition in _named_types(load_schema(name), "", {}).items():
            if fullname in seen:
                assert definition == seen[fullname][1], f"{fullname}: {name} vs {seen[fullname][0]}"
            else:
                seen[fullname] = (name, definition)
    assert {"io.envirostream.DeviceType", "io.envirostream.Capability"} <= set(seen)


def test_enums_keep_their_order_and_defaults() -> None:
    types = _named_types(load_schema("UniversalSensorReading"), "", {})
    capability = types["io.envirostream.Capability"]
    assert capability["symbols"][: len(CAPABILITIES)] == CAPABILITIES  # only appended
    assert capability["default"] == "UNKNOWN"
    device_type = types["io.envirostream.DeviceType"]
    assert device_type["symbols"][0] == "UNKNOWN" and device_type["default"] == "UNKNOWN"
    assert types["io.envirostream.Quality"]["symbols"] == ["GOOD", "SUSPECT", "BAD"]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_timestamps_are_timestamp_millis_longs(name: str) -> None:
    for f in load_schema(name)["fields"]:
        if f["name"] in {"timestamp", "ts", "window_start", "window_end", "first_ts", "last_ts",
                         "first_seen", "last_seen", "resolved_at"}:  # fmt: skip
            types = f["type"] if isinstance(f["type"], list) else [f["type"]]
            longs = [t for t in types if t != "null"]
            assert longs == [{"type": "long", "logicalType": "timestamp-millis"}], f["name"]


def test_load_schema_returns_a_fresh_copy() -> None:
    load_schema("Alert")["fields"].clear()
    assert load_schema("Alert")["fields"]
    assert json.dumps(load_schema("Alert"))
