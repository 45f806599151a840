"""The Avro codec: round trips, evolution, interoperability with Apache's avro, typed errors."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import avro.io
import avro.schema
import pytest

from schemas import (
    SCHEMA_NAMES,
    AvroCodec,
    CorruptRecordError,
    EncodeError,
    NotAvroError,
    UnknownSchemaError,
    fingerprint,
    load_schema,
)

READING = {
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
        "rule": "overheat", "severity": "CRITICAL", "state": "FIRING",
        "first_seen": 1_700_000_000_000, "last_seen": 1_700_000_100_000, "resolved_at": None,
        "duplicates": 3, "summary": "engine hot", "version": 2, "attributes": {},
    },
}  # fmt: skip


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_round_trip(name: str) -> None:
    codec = AvroCodec()
    data = codec.encode(name, SAMPLES[name])
    assert data[:2] == b"\xc3\x01"
    assert int.from_bytes(data[2:10], "little") == fingerprint(load_schema(name))
    assert codec.decode(data, name) == SAMPLES[name]


def _with_datetimes(record: dict[str, Any], *fields: str) -> dict[str, Any]:
    """Apache's avro library wants datetimes for timestamp-millis fields."""
    return record | {f: dt.datetime.fromtimestamp(record[f] / 1000, tz=dt.UTC) for f in fields}


def _evolved_reading_schema() -> dict[str, Any]:
    schema = copy.deepcopy(load_schema("UniversalSensorReading"))
    schema["fields"].append({"name": "firmware", "type": "string", "default": "unknown"})
    return schema


def test_new_reader_reads_records_of_an_old_writer() -> None:
    old = AvroCodec()
    data = old.encode("UniversalSensorReading", READING)
    new_schema = _evolved_reading_schema()
    # A reader whose current schema is the new one: the old writer is known by fingerprint.
    reader = avro.schema.parse(json.dumps(new_schema))
    writer = avro.schema.parse(json.dumps(load_schema("UniversalSensorReading")))
    decoded = avro.io.DatumReader(writer, reader).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert decoded["firmware"] == "unknown"
    assert decoded["device_id"] == READING["device_id"]


def test_old_reader_reads_records_of_a_new_writer() -> None:
    new_schema = _evolved_reading_schema()
    # A newer producer writes with the evolved schema (an extra field with a default).
    buf = io.BytesIO()
    avro.io.DatumWriter(avro.schema.parse(json.dumps(new_schema))).write(
        _with_datetimes(READING, "timestamp") | {"firmware": "2.1"}, avro.io.BinaryEncoder(buf)
    )
    data = b"\xc3\x01" + fingerprint(new_schema).to_bytes(8, "little") + buf.getvalue()
    codec = AvroCodec()
    with pytest.raises(UnknownSchemaError, match="unknown schema fingerprint"):
        codec.decode(data, "UniversalSensorReading")
    codec.register(new_schema)  # the old reader learns the writer schema (e.g. from a registry)
    assert codec.decode(data, "UniversalSensorReading") == READING


def test_records_written_by_the_codec_are_read_by_apache_avro() -> None:
    data = AvroCodec().encode("UniversalSensorReading", READING)
    schema = avro.schema.parse(json.dumps(load_schema("UniversalSensorReading")))
    record = avro.io.DatumReader(schema).read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert record["timestamp"].timestamp() * 1000 == READING["timestamp"]  # avro builds datetimes
    assert {k: v for k, v in record.items() if k != "timestamp"} == {
        k: v for k, v in READING.items() if k != "timestamp"
    }


def test_records_written_by_apache_avro_are_read_by_the_codec() -> None:
    schema_json = load_schema("WindowAggregate")
    buf = io.BytesIO()
    avro.io.DatumWriter(avro.schema.parse(json.dumps(schema_json))).write(
        _with_datetimes(
            SAMPLES["WindowAggregate"], "window_start", "window_end", "first_ts", "last_ts"
        ),
        avro.io.BinaryEncoder(buf),
    )
    data = b"\xc3\x01" + fingerprint(schema_json).to_bytes(8, "little") + buf.getvalue()
    assert AvroCodec().decode(data, "WindowAggregate") == SAMPLES["WindowAggregate"]


def test_fingerprint_agrees_with_apache_avro_on_a_schema_without_logical_types() -> None:
    schema = {"type": "record", "name": "P", "namespace": "x",
              "fields": [{"name": "a", "type": {"type": "enum", "name": "E", "symbols": ["A"]}},
                         {"name": "b", "type": ["null", "E"]}]}  # fmt: skip
    theirs = avro.schema.parse(json.dumps(schema)).fingerprint("CRC-64-AVRO")
    assert fingerprint(schema).to_bytes(8, "little") == bytes(theirs)  # wire order


@pytest.mark.parametrize(
    ("mangle", "error"),
    [
        (lambda d: b"\x01\x02random bytes", NotAvroError),
        (lambda d: d[: len(d) // 2], CorruptRecordError),
        (lambda d: d[:2] + struct.pack("<Q", 0xDEADBEEF) + d[10:], UnknownSchemaError),
        (lambda d: d + b"\x00\x01", CorruptRecordError),
        (lambda d: b"", NotAvroError),
    ],
)
def test_bad_bytes_raise_a_typed_error(mangle: Any, error: type) -> None:
    codec = AvroCodec()
    data = mangle(codec.encode("UniversalSensorReading", READING))
    with pytest.raises(error) as info:
        codec.decode(data, "UniversalSensorReading")
    assert info.value.reason in {"not_avro", "corrupt_body", "unknown_schema"}


def test_decode_batch_keeps_good_records_in_position() -> None:
    codec = AvroCodec()
    good = codec.encode("UniversalSensorReading", READING)
    out = codec.decode_batch("UniversalSensorReading", [good, b"junk", good[:5], good])
    assert out[0] == READING and out[3] == READING
    assert isinstance(out[1], NotAvroError) and isinstance(
        out[2], NotAvroError | CorruptRecordError
    )


def test_a_record_of_another_type_is_refused() -> None:
    codec = AvroCodec()
    data = codec.encode("AnomalyScore", SAMPLES["AnomalyScore"])
    with pytest.raises(UnknownSchemaError, match="written as AnomalyScore"):
        codec.decode(data, "UniversalSensorReading")


def test_encode_names_the_missing_field() -> None:
    record = {k: v for k, v in READING.items() if k != "device_id"}
    with pytest.raises(EncodeError, match="'device_id' is missing"):
        AvroCodec().encode("UniversalSensorReading", record)


class _Registry(BaseHTTPRequestHandler):
    schemas: dict[int, str] = {}

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for sid, text in self.schemas.items():
            if text == body["schema"]:
                self._send({"id": sid})
                return
        sid = len(self.schemas) + 100
        self.schemas[sid] = body["schema"]
        self._send({"id": sid})

    def do_GET(self) -> None:
        sid = int(self.path.rsplit("/", 1)[1])
        self._send({"schema": self.schemas[sid]})


@pytest.fixture
def registry_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_confluent_wire_format_with_a_registry(registry_url: str) -> None:
    writer = AvroCodec(registry_url=registry_url)
    data = writer.encode("UniversalSensorReading", READING)
    assert data[0] == 0
    schema_id = struct.unpack(">I", data[1:5])[0]
    assert schema_id >= 100
    # A separate reader fetches the writer schema by id.
    assert AvroCodec(registry_url=registry_url).decode(data, "UniversalSensorReading") == READING
