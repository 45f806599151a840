"""The codec: round trips, framing, typed errors, batches with bad items."""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest

from schemas import (
    SCHEMA_NAMES,
    AvroCodec,
    CorruptRecordError,
    DecodeError,
    EncodeError,
    NotAvroError,
    UnknownSchemaError,
    fingerprint,
    load_schema,
    measure_codec,
)
from tests.unit.schemas.samples import READING, SAMPLES

NAME = "UniversalSensorReading"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_round_trip(name: str) -> None:
    codec = AvroCodec()
    data = codec.encode(name, SAMPLES[name])
    assert data[:2] == b"\xc3\x01"
    assert int.from_bytes(data[2:10], "little") == fingerprint(load_schema(name))
    assert codec.decode(data, name) == SAMPLES[name]


def test_timestamps_decode_as_ints_and_defaults_fill_in() -> None:
    codec = AvroCodec()
    minimal = {k: READING[k] for k in ("reading_id", "device_id", "sensor_id", "value")}
    decoded = codec.decode(codec.encode(NAME, minimal | {"timestamp": 5}), NAME)
    assert type(decoded["timestamp"]) is int
    assert decoded == minimal | {
        "timestamp": 5, "device_type": "UNKNOWN", "capability": "UNKNOWN", "unit": "",
        "sequence": 0, "quality": "GOOD", "tenant_id": "default", "attributes": {}, "label": None,
    }  # fmt: skip


def test_encode_batch_and_decode_batch_agree() -> None:
    codec = AvroCodec()
    records = [READING | {"sequence": i, "value": i / 3} for i in range(500)]
    assert codec.decode_batch(NAME, codec.encode_batch(NAME, records)) == records


@pytest.mark.parametrize(
    ("mangle", "error", "reason"),
    [
        (lambda d: b"\x01\x02random bytes", NotAvroError, "not_avro"),
        (lambda d: b"", NotAvroError, "not_avro"),
        (lambda d: d[:9], NotAvroError, "not_avro"),
        (lambda d: d[:10], CorruptRecordError, "corrupt_body"),
        (lambda d: d[: len(d) // 2], CorruptRecordError, "corrupt_body"),
        (lambda d: d[:-1], CorruptRecordError, "corrupt_body"),
        (lambda d: d + b"\x00\x01", CorruptRecordError, "corrupt_body"),
        (lambda d: d[:10] + b"\xff" * 40, CorruptRecordError, "corrupt_body"),
        (
            lambda d: d[:2] + struct.pack("<Q", 0xDEADBEEF) + d[10:],
            UnknownSchemaError,
            "unknown_fingerprint",
        ),
        (lambda d: b"\x00\x00\x00\x00\x07" + d[10:], UnknownSchemaError, "no_registry"),
    ],
)
def test_bad_bytes_raise_a_typed_error(mangle: Any, error: type[DecodeError], reason: str) -> None:
    codec = AvroCodec()
    data = mangle(codec.encode(NAME, READING))
    with pytest.raises(error) as info:
        codec.decode(data, NAME)
    assert info.value.reason == reason
    assert str(info.value)


def test_decode_batch_keeps_good_records_in_position() -> None:
    codec = AvroCodec()
    good = codec.encode(NAME, READING)
    unknown = good[:2] + struct.pack("<Q", 1) + good[10:]
    items: list[Any] = [good, b"junk", good[:15], unknown, None, bytearray(good), unknown, good]
    out = codec.decode_batch(NAME, items)
    assert [type(x).__name__ for x in out] == [
        "dict", "NotAvroError", "CorruptRecordError", "UnknownSchemaError", "NotAvroError",
        "dict", "UnknownSchemaError", "dict",
    ]  # fmt: skip
    assert out[0] == out[5] == out[7] == READING


def test_no_input_crashes_decode_batch() -> None:
    """Random mutations of good records: every item is a record or a DecodeError."""
    codec = AvroCodec()
    rng = random.Random(7)
    goods = [codec.encode(name, SAMPLES[name]) for name in SCHEMA_NAMES]
    items = []
    for _ in range(3000):
        data = bytearray(rng.choice(goods))
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(3)
            pos = rng.randrange(2, max(len(data), 3))
            if op == 0 and pos < len(data):
                data[pos] = rng.randrange(256)
            elif op == 1:
                del data[pos:]
            else:
                data[pos:pos] = rng.randbytes(rng.randint(1, 5))
        items.append(bytes(data))
    items += [rng.randbytes(rng.randint(0, 64)) for _ in range(500)]
    for name in SCHEMA_NAMES:
        out = codec.decode_batch(name, items)
        assert all(isinstance(x, dict | DecodeError) for x in out)


def test_a_record_of_another_type_is_refused() -> None:
    codec = AvroCodec()
    data = codec.encode("AnomalyScore", SAMPLES["AnomalyScore"])
    with pytest.raises(UnknownSchemaError, match="written as AnomalyScore") as info:
        codec.decode(data, NAME)
    assert info.value.reason == "wrong_record_type"


def test_encode_names_the_missing_field() -> None:
    record = {k: v for k, v in READING.items() if k != "device_id"}
    with pytest.raises(EncodeError, match="missing the required field 'device_id'") as info:
        AvroCodec().encode(NAME, record)
    assert (info.value.field, info.value.schema_name) == ("device_id", NAME)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("value", "hot", "expects double, got str 'hot'"),
        ("device_type", "TOASTER", "one of UNKNOWN, GRID_GUARDIAN"),
        ("sequence", 2**64, "expects long"),
        ("attributes", {"a": 1}, "map of string"),
        ("label", {"scenario": "s", "phase": "LATE"}, "Label.phase"),
        ("timestamp", None, "int epoch milliseconds"),
    ],
)
def test_encode_error_names_the_field_expected_and_got(field: str, value: Any, words: str) -> None:
    with pytest.raises(EncodeError) as info:
        AvroCodec().encode(NAME, READING | {field: value})
    assert info.value.field == field
    assert words in str(info.value)


def test_a_datetime_timestamp_gets_a_hint() -> None:
    import datetime as dt

    when = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(EncodeError, match=r"int\(ts.timestamp\(\) \* 1000\)"):
        AvroCodec().encode(NAME, READING | {"timestamp": when})


def test_encode_of_a_non_dict_and_unknown_names() -> None:
    codec = AvroCodec()
    with pytest.raises(EncodeError, match="must be a dict, got list"):
        codec.encode(NAME, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(KeyError, match="known: UniversalSensorReading"):
        codec.encode("Reading", READING)
    with pytest.raises(KeyError, match="unknown schema 'Reading'"):
        codec.decode_batch("Reading", [b""])
    with pytest.raises(KeyError):
        load_schema("Reading")


def test_decode_errors_are_enviro_stream_errors_with_a_reason() -> None:
    from core.errors import EnviroStreamError

    for cls in (DecodeError, NotAvroError, UnknownSchemaError, CorruptRecordError):
        assert issubclass(cls, EnviroStreamError)
        assert isinstance(cls("x").reason, str)
    assert issubclass(EncodeError, EnviroStreamError)
    assert UnknownSchemaError("x", reason="unknown_schema_id").reason == "unknown_schema_id"


def test_measure_codec_reports_rates() -> None:
    result = measure_codec(200)
    assert result["n"] == 200
    assert result["encode_per_s"] > 0 and result["decode_per_s"] > 0
    assert 50 < result["bytes_per_record"] < 200
