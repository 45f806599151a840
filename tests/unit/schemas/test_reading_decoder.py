"""The specialised reading decoder against fastavro: the same records, the same rejections."""

from __future__ import annotations

import io
import math
import random
import struct
from typing import Any

from fastavro import parse_schema, schemaless_writer

from producers.encoding import avro_long, avro_string
from schemas import AvroCodec, fingerprint, load_schema
from schemas.reading_decoder import reading_decoder

NAME = "UniversalSensorReading"
SCHEMA = load_schema(NAME)
SYMBOLS = {
    f["name"]: f["type"]["symbols"]
    for f in SCHEMA["fields"]
    if isinstance(f["type"], dict) and f["type"].get("type") == "enum"
}
PHASES = SCHEMA["fields"][-1]["type"][1]["fields"][1]["type"]["symbols"]
TEXT = "abcxyz/@-_.0123 éßø€中文🙂\u0000\u07ff\uffff"


def _text(rng: random.Random, longest: int = 80) -> str:
    # lengths past 63 characters (and multi-byte ones) need multi-byte length varints
    return "".join(rng.choice(TEXT) for _ in range(rng.choice([0, 1, 5, 20, longest])))


def _long(rng: random.Random) -> int:
    return rng.choice(
        [0, 1, -1, 63, 64, -65, 2**31, -(2**31), 1_767_225_600_000, 2**63 - 1, -(2**63)]
        + [rng.randint(-(2**63), 2**63 - 1) for _ in range(3)]
    )


def _reading(rng: random.Random) -> dict[str, Any]:
    value = rng.choice(
        [0.0, -0.0, 1.5, -273.15, 1e308, -1e-308, math.inf, -math.inf, rng.uniform(-1e6, 1e6)]
    )
    label = None
    if rng.random() < 0.5:
        label = {"scenario": _text(rng), "phase": rng.choice(PHASES)}
    attributes = {_text(rng, 70): _text(rng) for _ in range(rng.choice([0, 0, 1, 3, 70]))}
    return {
        "reading_id": _text(rng, 300),
        "device_id": _text(rng),
        "device_type": rng.choice(SYMBOLS["device_type"]),
        "sensor_id": _text(rng),
        "capability": rng.choice(SYMBOLS["capability"]),
        "value": value,
        "unit": _text(rng, 3),
        "timestamp": _long(rng),
        "sequence": _long(rng),
        "quality": rng.choice(SYMBOLS["quality"]),
        "tenant_id": _text(rng),
        "attributes": attributes,
        "label": label,
    }


def test_random_readings_decode_as_fastavro_decodes_them() -> None:
    rng = random.Random(13)
    codec = AvroCodec()
    records = [_reading(rng) for _ in range(3000)]
    records += [  # every symbol of every enum, and both label branches, at least once
        {**records[0], "device_type": dt, "capability": cap, "quality": q, "label": lb}
        for dt in SYMBOLS["device_type"]
        for cap in SYMBOLS["capability"]
        for q, lb in zip(
            SYMBOLS["quality"],
            [None, *({"scenario": "s", "phase": p} for p in PHASES)],
            strict=False,  # 3 qualities, 4 labels: the last phase is checked by the random ones
        )
    ]
    encoded = codec.encode_batch(NAME, records)
    fast = reading_decoder(SCHEMA)
    assert fast is not None
    mine = fast(encoded, encoded[0][:10])
    assert None not in mine  # none left to fastavro: the fast path read every one
    assert mine == codec._decode_each(NAME, encoded)  # fastavro's records, field by field
    assert mine == records
    assert codec.decode_batch(NAME, encoded) == records
    assert all(list(m) == [f["name"] for f in SCHEMA["fields"]] for m in mine)  # key order
    nan = codec.decode_batch(NAME, codec.encode_batch(NAME, [{**records[1], "value": math.nan}]))
    assert math.isnan(nan[0]["value"])  # type: ignore[index]


def _outcome(item: Any) -> Any:
    """A record (its repr: NaN equals NaN), or the class and reason of the error."""
    return repr(item) if isinstance(item, dict) else (type(item).__name__, item.reason)


def malformed(good: list[bytes], rng: random.Random, step: int, flips: int) -> list[bytes]:
    """Each record of ``good`` cut every ``step`` bytes, with a byte after it, and with
    ``flips`` single random bytes changed (after the 10-byte header)."""
    bad: list[bytes] = []
    for data in good:
        bad.extend(data[:cut] for cut in range(0, len(data), step))  # truncated everywhere
        bad.append(data + b"\x00")  # a byte after a complete record
        for _ in range(flips):  # random bytes changed
            mutated = bytearray(data)
            mutated[rng.randrange(10, len(data))] = rng.randrange(256)
            bad.append(bytes(mutated))
    return bad


def test_malformed_bytes_get_the_reasons_fastavro_gives() -> None:
    rng = random.Random(7)
    codec = AvroCodec()
    good = codec.encode_batch(NAME, [_reading(rng) for _ in range(40)])
    bad = malformed(good, rng, step=3, flips=20)
    bad += [b"", b"\xc3", b"\xc3\x01" + bytes(8), good[0][:10] + b"\xff" * 40]
    fast = codec.decode_batch(NAME, bad)
    slow = codec._decode_each(NAME, bad)
    assert [_outcome(x) for x in fast] == [_outcome(x) for x in slow]
    reasons = {x.reason for x in fast if not isinstance(x, dict)}
    assert {"corrupt_body", "not_avro", "unknown_fingerprint"} <= reasons


def _s(text: str) -> bytes:
    return avro_string(text)


def _body(
    *, device_type: bytes = b"\x02", sequence: bytes = b"\x0e", attributes: bytes = b"\x00"
) -> bytes:
    """A reading's Avro body written by hand, with some fields' bytes given as they are."""
    return (
        _s("r1") + _s("d1") + device_type + _s("d1/t") + avro_long(2) + struct.pack("<d", 1.5)
        + _s("degC") + avro_long(1_767_225_600_000) + sequence + avro_long(0) + _s("default")
        + attributes + b"\x00"
    )  # fmt: skip


def test_hand_written_body_decodes_on_the_fast_path() -> None:
    codec = AvroCodec()
    data = codec._headers[NAME] + _body()
    fast = reading_decoder(SCHEMA)
    assert fast is not None
    record = fast([data], codec._headers[NAME])[0]
    assert record is not None and record == codec._decode_each(NAME, [data])[0]
    assert (record["device_type"], record["sequence"], record["value"]) == ("GRID_GUARDIAN", 7, 1.5)


def test_unusual_encodings_are_left_to_fastavro() -> None:
    """A map in a block with its byte size, an over-long varint, a negative enum index:
    the fast path gives up, and the codec answers what fastavro answers."""
    codec = AvroCodec()
    header = codec._headers[NAME]
    entries = _s("a") + _s("1") + _s("b") + _s("2")
    sized_map = avro_long(-2) + avro_long(len(entries)) + entries + b"\x00"
    cases = [
        _body(attributes=sized_map),
        _body(sequence=b"\x80" * 10 + b"\x00"),  # 0 in 11 bytes
        _body(sequence=b"\xff" * 9 + b"\x7f"),  # 10 bytes, over 64 bits
        _body(device_type=b"\x01"),  # zig-zag 1 = index -1
        _body(device_type=avro_long(6)),  # one past the last symbol
    ]
    items = [header + body for body in cases]
    fast = reading_decoder(SCHEMA)
    assert fast is not None
    assert fast(items, header) == [None] * len(items)
    out = codec.decode_batch(NAME, items)
    assert [_outcome(x) for x in out] == [_outcome(x) for x in codec._decode_each(NAME, items)]
    assert isinstance(out[0], dict) and out[0]["attributes"] == {"a": "1", "b": "2"}
    # fastavro reads index -1 as the last symbol (Python indexing): kept as it was
    assert isinstance(out[3], dict) and out[3]["device_type"] == SYMBOLS["device_type"][-1]
    assert not isinstance(out[4], dict) and out[4].reason == "corrupt_body"


def test_other_layouts_get_no_fast_decoder() -> None:
    changed = load_schema(NAME)
    changed["fields"].insert(6, {"name": "extra", "type": "string", "default": ""})
    assert reading_decoder(changed) is None
    assert reading_decoder(load_schema("Alert")) is None
    assert reading_decoder(SCHEMA) is not None


def test_older_writer_schemas_still_resolve() -> None:
    """A record written with another version of the schema takes fastavro's resolution."""
    v1 = load_schema(NAME)
    v1["fields"] = [f for f in v1["fields"] if f["name"] not in ("attributes", "label")]
    codec = AvroCodec(extra_schemas=[v1])
    buf = io.BytesIO()
    record = {
        k: v for k, v in _reading(random.Random(3)).items() if k not in ("attributes", "label")
    }
    schemaless_writer(buf, parse_schema(v1), record)
    data = b"\xc3\x01" + struct.pack("<Q", fingerprint(v1)) + buf.getvalue()
    out = codec.decode_batch(NAME, [data])[0]
    assert out == {**record, "attributes": {}, "label": None}
