"""The column-wise encoder writes what fastavro writes, byte for byte, or leaves the batch.

Random aggregates and anomaly scores over the edges of every type (longs across 64 bits,
NaN, infinities and -0.0, multi-byte UTF-8, strings longer than one length byte, every
enum symbol) go through both. A batch with a value fastavro would write differently or
refuse is left whole to fastavro, and the codec's answer does not change.
"""

from __future__ import annotations

import math
import random
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import AvroCodec, EncodeError, load_schema
from schemas.codec import FLAT_BATCH
from schemas.flat_encoder import flat_encoder

LONGS = [0, 1, -1, 63, 64, -64, -65, 2**31, -(2**31) - 1, 2**53 + 1, 2**63 - 1, -(2**63)]
DOUBLES = [0.0, -0.0, 1.5, math.nan, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]
TEXTS = ["", "a", "dev-00042", "température", "日本語のセンサー", "x" * 200, "🙂" * 40]


def _value(rng: random.Random, field: dict[str, Any]) -> Any:
    t = field["type"]
    kind = t if isinstance(t, str) else t["type"]
    if kind == "enum":
        return rng.choice(t["symbols"])
    if kind == "long":
        return rng.choice([*LONGS, rng.randint(-(2**63), 2**63 - 1), rng.randint(-300, 300)])
    if kind == "double":
        return rng.choice([*DOUBLES, rng.uniform(-1e6, 1e6), rng.gauss(0, 1e-9)])
    if kind == "boolean":
        return rng.random() < 0.5
    return rng.choice([*TEXTS, f"s{rng.randint(0, 10**9)}"])


def _records(name: str, n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    fields = load_schema(name)["fields"]
    return [{f["name"]: _value(rng, f) for f in fields} for _ in range(n)]


def _one_by_one(codec: AvroCodec, name: str, records: list[dict[str, Any]]) -> list[bytes]:
    """The codec's bytes written a record at a time (fastavro: a batch of one is not flat)."""
    assert FLAT_BATCH > 1
    return [codec.encode(name, r) for r in records]


@pytest.mark.parametrize("name", ["WindowAggregate", "AnomalyScore"])
@pytest.mark.parametrize("seed", range(6))
def test_flat_records_are_written_byte_for_byte_as_fastavro_writes_them(
    name: str, seed: int
) -> None:
    codec = AvroCodec()
    schema, header = codec.current(name)
    encode = flat_encoder(schema)
    assert encode is not None
    records = _records(name, 1_500, seed)
    assert encode(records, header) == _one_by_one(codec, name, records)
    assert codec.encode_batch(name, records) == _one_by_one(codec, name, records)


def test_schemas_with_unions_or_maps_have_no_flat_encoder() -> None:
    assert flat_encoder(load_schema("Alert")) is None
    assert flat_encoder(load_schema("UniversalSensorReading")) is None


def _aggregates() -> list[dict[str, Any]]:
    return _records("WindowAggregate", FLAT_BATCH * 2, 99)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window_start", datetime(2026, 1, 1, tzinfo=UTC)),  # a timestamp as a datetime
        ("mean", 3),  # an int for a double
        ("count", True),  # a bool for a long
        ("count", 2**63),  # beyond 64 bits: fastavro refuses it
        ("capability", "NOT_A_CAPABILITY"),  # fastavro refuses it
        ("unit", None),
    ],
)
def test_a_batch_with_an_unexpected_value_is_left_whole_to_fastavro(field: str, value: Any) -> None:
    codec = AvroCodec()
    records = _aggregates()
    records[FLAT_BATCH][field] = value
    schema, header = codec.current("WindowAggregate")
    encode = flat_encoder(schema)
    assert encode is not None
    assert encode(records, header) is None
    try:
        expected = _one_by_one(codec, "WindowAggregate", records)
    except EncodeError as refused:
        with pytest.raises(EncodeError, match=re.escape(str(refused)[:40])):
            codec.encode_batch("WindowAggregate", records)
    else:
        assert codec.encode_batch("WindowAggregate", records) == expected


def test_a_field_left_to_its_default_leaves_the_batch_to_fastavro() -> None:
    codec = AvroCodec()
    records = _aggregates()
    del records[3]["tenant_id"]  # it has a default
    written = codec.encode_batch("WindowAggregate", records)
    assert codec.decode(written[3], "WindowAggregate")["tenant_id"] == "default"
    assert written == [codec.encode("WindowAggregate", r) for r in records]


def test_the_codec_writes_large_flat_batches_column_wise_and_reads_them_back() -> None:
    codec = AvroCodec()
    records = _aggregates()
    written = codec.encode_batch("WindowAggregate", records)
    assert written == [codec.encode("WindowAggregate", r) for r in records]  # one by one
    back = [codec.decode(w, "WindowAggregate") for w in written]
    assert [b["device_id"] for b in back] == [r["device_id"] for r in records]
    assert [repr(b["mean"]) for b in back] == [repr(r["mean"]) for r in records]
