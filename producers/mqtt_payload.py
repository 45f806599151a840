"""One MQTT message → the readings it carries, validated, or the reason it is refused.

A message on ``devices/<device>/telemetry`` is either the project's Avro (a single-object
``C3 01`` or Confluent ``00`` framed ``UniversalSensorReading``) or JSON: one reading object,
a list of them, or ``{"readings": [...]}`` (``schemas/mqtt_reading.schema.json``,
docs/gateway.md). A message is all or nothing: one bad reading refuses the whole message,
so a device never sees half a batch acknowledged.

The device is the one in the topic (the broker's ACL lets a device publish only under its
own id); a reading naming another device is refused (``device_mismatch``). JSON readings
without a ``reading_id`` get ``{device}/{capability}@{timestamp}``: the same message
delivered twice gives the same ids.

>>> readings = parse_message("devices/pump-7/telemetry",
...     b'{"capability": "PRESSURE", "value": 2.5, "unit": "bar", "timestamp": 1700000000000}')
>>> readings[0]["reading_id"], readings[0]["sensor_id"], readings[0]["value"]
('pump-7/PRESSURE@1700000000000', 'pump-7', 2.5)
>>> parse_message("devices/pump-7/telemetry", b'{"capability": "PRESURE", "value": 1,'
...     b' "timestamp": 1700000000000}')  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
producers.mqtt_payload.PayloadError: unknown_capability: reading 0: capability 'PRESURE' ...
"""

from __future__ import annotations

import datetime as dt
import json
import math
from functools import cache
from typing import Any

from core.errors import EnviroStreamError
from schemas import AvroCodec, DecodeError, load_schema

__all__ = [
    "MAX_BATCH",
    "PayloadError",
    "device_from_topic",
    "enum_symbols",
    "parse_message",
]

READING = "UniversalSensorReading"
MAX_BATCH = 10_000  # readings in one message
_MAX_TS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
_AVRO_MARKERS = (b"\xc3\x01", b"\x00")
_REQUIRED = ("capability", "value", "timestamp")
_OPTIONAL = (
    "reading_id",
    "device_id",
    "device_type",
    "sensor_id",
    "unit",
    "sequence",
    "quality",
    "tenant_id",
    "attributes",
)
_FIELDS = frozenset((*_REQUIRED, *_OPTIONAL))


class PayloadError(EnviroStreamError):
    """A message the gateway refuses: ``reason`` is a short label (DLQ header, metric label),
    the message says what was wrong in words."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.detail = message


@cache
def enum_symbols(name: str) -> frozenset[str]:
    """The symbols of the reading schema's enum ``name`` (Capability, DeviceType, Quality)."""
    for field in load_schema(READING)["fields"]:
        kind = field["type"]
        if isinstance(kind, dict) and kind.get("type") == "enum" and kind["name"] == name:
            return frozenset(kind["symbols"])
    raise KeyError(name)


def device_from_topic(topic: str) -> str:
    """The device id of ``devices/<device>/telemetry`` (any prefix levels before it).

    >>> device_from_topic("devices/gg-001/telemetry")
    'gg-001'
    >>> device_from_topic("site-a/devices/gg-001/telemetry")
    'gg-001'
    """
    levels = topic.split("/")
    if len(levels) < 3 or levels[-3] != "devices" or levels[-1] != "telemetry" or not levels[-2]:
        msg = f"topic {topic!r} is not devices/<device>/telemetry"
        raise PayloadError(msg, reason="bad_topic")
    return levels[-2]


def parse_message(
    topic: str, payload: bytes, codec: AvroCodec | None = None, tenant: str | None = None
) -> list[dict]:
    """The readings of one message, ready for ``codec.encode_batch``; raises PayloadError.

    With a ``tenant`` (the gateway's ``--tenant``) every reading is of that tenant: one
    without a ``tenant_id`` (or with Avro's default ``default``) gets it, one naming another
    tenant is refused (``tenant_mismatch``): a device may not write into another tenant's
    data. Without, a reading's own ``tenant_id`` is kept (``default`` when it has none).
    """
    device = device_from_topic(topic)
    if payload[:2] == _AVRO_MARKERS[0] or payload[:1] == _AVRO_MARKERS[1]:
        return [_own_tenant(_avro_reading(device, payload, codec or _codec()), tenant, "")]
    try:
        doc = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        msg = "payload is neither Avro nor UTF-8 JSON"
        raise PayloadError(msg, reason="not_utf8") from None
    except json.JSONDecodeError as exc:
        msg = f"payload is not JSON: {exc}"
        raise PayloadError(msg, reason="invalid_json") from None
    if isinstance(doc, dict) and "readings" in doc:
        if set(doc) != {"readings"}:
            extra = sorted(set(doc) - {"readings"})
            msg = f"a batch object has only 'readings'; got {extra}"
            raise PayloadError(msg, reason="bad_shape")
        doc = doc["readings"]
    items = doc if isinstance(doc, list) else [doc]
    if not items:
        msg = "the message holds no reading"
        raise PayloadError(msg, reason="empty_batch")
    if len(items) > MAX_BATCH:
        msg = f"{len(items)} readings in one message; at most {MAX_BATCH}"
        raise PayloadError(msg, reason="batch_too_large")
    return [
        _own_tenant(_json_reading(device, i, item), tenant, f"reading {i}: ")
        for i, item in enumerate(items)
    ]


def _own_tenant(reading: dict, tenant: str | None, where: str) -> dict:
    if tenant is None:
        return reading
    named = reading.get("tenant_id") or "default"
    if named not in (tenant, "default"):
        msg = f"{where}tenant_id {named!r} sent through the gateway of tenant {tenant!r}"
        raise PayloadError(msg, reason="tenant_mismatch")
    reading["tenant_id"] = tenant
    return reading


@cache
def _codec() -> AvroCodec:
    return AvroCodec()


def _avro_reading(device: str, payload: bytes, codec: AvroCodec) -> dict:
    result = codec.decode_batch(READING, [payload])[0]
    if isinstance(result, DecodeError):
        raise PayloadError(str(result), reason=result.reason)
    if result["device_id"] != device:
        msg = f"reading of device {result['device_id']!r} published on device {device!r}'s topic"
        raise PayloadError(msg, reason="device_mismatch")
    return result


def _json_reading(device: str, index: int, item: Any) -> dict:
    where = f"reading {index}"
    if not isinstance(item, dict):
        msg = f"{where}: expected a JSON object, got {type(item).__name__}"
        raise PayloadError(msg, reason="bad_shape")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        text = f"{where}: unknown field(s) {unknown}"
        raise PayloadError(text, reason="unknown_field")
    missing = [f for f in _REQUIRED if f not in item]
    if missing:
        text = f"{where}: missing {missing}"
        raise PayloadError(text, reason="missing_field")
    if item.get("device_id", device) != device:
        msg = f"{where}: device_id {item['device_id']!r} published on device {device!r}'s topic"
        raise PayloadError(msg, reason="device_mismatch")
    capability = _symbol(item, "capability", "Capability", where, "unknown_capability")
    value = item["value"]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        msg = f"{where}: value must be a finite number, got {json.dumps(value)}"
        raise PayloadError(msg, reason="bad_value")
    ts = _timestamp(item["timestamp"], where)
    reading: dict[str, Any] = {
        "reading_id": _text(item, "reading_id", where) or f"{device}/{capability}@{ts}",
        "device_id": device,
        "device_type": _symbol(item, "device_type", "DeviceType", where, "bad_field", "UNKNOWN"),
        "sensor_id": _text(item, "sensor_id", where) or device,
        "capability": capability,
        "value": float(value),
        "unit": _text(item, "unit", where),
        "timestamp": ts,
        "sequence": _sequence(item, where),
        "quality": _symbol(item, "quality", "Quality", where, "bad_field", "GOOD"),
        "tenant_id": _text(item, "tenant_id", where) or "default",
        "attributes": _attributes(item, where),
        "label": None,
    }
    return reading


def _text(item: dict, name: str, where: str) -> str:
    value = item.get(name, "")
    if not isinstance(value, str):
        msg = f"{where}: {name} must be a string, got {json.dumps(value)}"
        raise PayloadError(msg, reason="bad_field")
    return value


def _symbol(
    item: dict, name: str, enum: str, where: str, reason: str, default: str | None = None
) -> str:
    value = item.get(name, default)
    if not isinstance(value, str) or value.upper() not in enum_symbols(enum):
        msg = f"{where}: {name} {value!r} is not one of the schema's {enum} symbols"
        raise PayloadError(msg, reason=reason)
    return value.upper()


def _timestamp(value: Any, where: str) -> int:
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            msg = f"{where}: timestamp {value!r} is not epoch ms or ISO 8601 with a zone"
            raise PayloadError(msg, reason="bad_timestamp")
        return int(when.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_TS:
        msg = f"{where}: timestamp must be epoch milliseconds (integer), got {json.dumps(value)}"
        raise PayloadError(msg, reason="bad_timestamp")
    return value


def _sequence(item: dict, where: str) -> int:
    value = item.get("sequence", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        msg = f"{where}: sequence must be a non-negative integer, got {json.dumps(value)}"
        raise PayloadError(msg, reason="bad_field")
    return value


def _attributes(item: dict, where: str) -> dict[str, str]:
    value = item.get("attributes", {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        msg = f"{where}: attributes must be an object of strings"
        raise PayloadError(msg, reason="bad_field")
    return value
