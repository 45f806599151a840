"""Interoperability with Apache's reference ``avro`` library (bodies and fingerprints)."""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from typing import Any

import avro.io
import avro.schema
import pytest

from schemas import SCHEMA_NAMES, AvroCodec, canonical_form, fingerprint, load_schema
from schemas.codec import _strip_logical
from tests.unit.schemas.samples import READING, SAMPLES, TIMESTAMP_FIELDS


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO written from the Avro specification, independent of fastavro."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def _apache(schema: dict[str, Any]) -> avro.schema.Schema:
    return avro.schema.parse(json.dumps(schema))


def _to_datetimes(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """Apache's avro wants aware datetimes for timestamp-millis fields."""
    return record | {
        f: dt.datetime.fromtimestamp(record[f] / 1000, tz=dt.UTC)
        for f in TIMESTAMP_FIELDS[name]
        if record[f] is not None
    }


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_records_written_by_the_codec_are_read_by_apache_avro(name: str) -> None:
    data = AvroCodec().encode(name, SAMPLES[name])
    reader = avro.io.DatumReader(_apache(load_schema(name)))
    body = io.BytesIO(data[10:])
    record = reader.read(avro.io.BinaryDecoder(body))
    assert body.tell() == len(data) - 10
    assert record == _to_datetimes(name, SAMPLES[name])


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_records_written_by_apache_avro_are_read_by_the_codec(name: str) -> None:
    schema = load_schema(name)
    buf = io.BytesIO()
    writer = avro.io.DatumWriter(_apache(schema))
    writer.write(_to_datetimes(name, SAMPLES[name]), avro.io.BinaryEncoder(buf))
    data = b"\xc3\x01" + fingerprint(schema).to_bytes(8, "little") + buf.getvalue()
    assert AvroCodec().decode(data, name) == SAMPLES[name]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_fingerprint_is_crc64_avro_of_the_canonical_form(name: str) -> None:
    schema = load_schema(name)
    assert fingerprint(schema) == _crc64_avro(canonical_form(schema).encode())
    # Apache's avro agrees once logicalType is gone: avro 1.12 (Python) keeps a logical
    # long as {"type":"long"} in its canonical form, against the spec's [PRIMITIVES] rule
    # that fastavro and Java follow ("long"); everything else is the same text.
    theirs = _apache(schema).canonical_form
    assert theirs.replace('{"type":"long"}', '"long"') == canonical_form(schema)
    plain = _apache(_strip_logical(copy.deepcopy(schema)))
    assert bytes(plain.fingerprint("CRC-64-AVRO")) == fingerprint(schema).to_bytes(8, "little")


def test_an_evolved_reader_in_apache_avro_reads_codec_records() -> None:
    new = copy.deepcopy(load_schema("UniversalSensorReading"))
    new["fields"].append({"name": "firmware", "type": "string", "default": "unknown"})
    data = AvroCodec().encode("UniversalSensorReading", READING)
    reader = avro.io.DatumReader(_apache(load_schema("UniversalSensorReading")), _apache(new))
    record = reader.read(avro.io.BinaryDecoder(io.BytesIO(data[10:])))
    assert isinstance(record, dict)
    assert record["firmware"] == "unknown"
    assert record["reading_id"] == READING["reading_id"]
