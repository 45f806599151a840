"""The column decoder against the codec's record decoder: the same readings, the same
rejections, whatever the bytes."""

from __future__ import annotations

import math
import random
from typing import Any

from schemas import AvroCodec, DecodeError, load_schema
from schemas.reading_columns import ColumnReader, ColumnSymbols, decode_columns
from streams.readings import READING_COLUMNS
from tests.unit.schemas.test_reading_decoder import (
    NAME,
    PHASES,
    SYMBOLS,
    _body,
    _reading,
    malformed,
)

# the readings table's order, as the worker writes it, under the reading's field names
COLUMNS = ["timestamp" if c == "ts" else c for c in READING_COLUMNS]


def _expected_columns(records: list[dict[str, Any]]) -> list[list[Any]]:
    """The table columns of decoded records, built here from the records themselves."""
    out: list[list[Any]] = []
    for name in COLUMNS:
        if name in ("scenario", "phase"):
            out.append([(r["label"] or {}).get(name, "") for r in records])
        else:
            out.append([r[name] for r in records])
    return out


def _same(a: Any, b: Any) -> bool:
    return repr(a) == repr(b)  # NaN equals NaN


def test_random_readings_read_into_the_columns_of_their_records() -> None:
    rng = random.Random(21)
    codec = AvroCodec()
    records = [_reading(rng) for _ in range(2000)]
    records += [
        {**records[0], "device_type": dt, "capability": cap, "attributes": {}, "label": lb}
        for dt in SYMBOLS["device_type"]
        for cap in SYMBOLS["capability"]
        for lb in [None, *({"scenario": "s", "phase": p} for p in PHASES)]
    ]
    items = codec.encode_batch(NAME, records)
    cols = ColumnReader(codec).read(items)
    assert len(cols) == len(records)
    assert _same(cols.table_columns(), _expected_columns(records))
    assert all(_same(cols.record(i), r) for i, r in enumerate(records))
    assert _same(cols.values.tolist(), [r["value"] for r in records])
    assert cols.times.tolist() == [r["timestamp"] for r in records]
    # long strings, attributes and 10-byte varints are the codec's; the rest are not
    assert 0 < len(cols.others) < len(records)
    simple = [i for i, r in enumerate(records) if i not in cols.others]
    assert any(records[i]["label"] for i in simple) and any(not records[i]["label"] for i in simple)


def test_a_fleets_batch_is_read_without_the_codec() -> None:
    codec = AvroCodec()
    records = [
        {
            "reading_id": f"dev-{d}:{t}",
            "device_id": f"dev-{d}",
            "sensor_id": f"dev-{d}/voc",
            "capability": "VOC",
            "value": d + t / 10,
            "timestamp": 1_767_225_600_000 + t * 1000,
            "sequence": t,
            "tenant_id": "default",
            "label": {"scenario": "leak", "phase": "FAILURE"} if d == 3 else None,
        }
        for t in range(20)
        for d in range(50)
    ]
    items = codec.encode_batch(NAME, records)
    cols = ColumnReader(codec).read(items)
    assert cols.others == {}
    assert cols.record(3) == codec.decode_batch(NAME, [items[3]])[0]
    assert cols.scenario[3] == "leak" and cols.phase[3] == "FAILURE" and cols.phase[4] == ""
    assert cols.id_bytes[0] == len("dev-0/voc") and cols.key_bytes[0] == len("dev-0")


def test_malformed_bytes_get_the_errors_the_codec_gives() -> None:
    rng = random.Random(8)
    codec = AvroCodec()
    good = codec.encode_batch(NAME, [_reading(rng) for _ in range(30)])
    good += codec.encode_batch(NAME, [{**_reading(rng), "attributes": {}} for _ in range(30)])
    bad: list[Any] = list(malformed(good, rng, step=2, flips=30))
    header = codec.current(NAME)[1]
    bad += [b"", b"\xc3", header, header + b"\xff" * 40, None, bytearray(good[0]), good[0]]
    bad += [header + _body(device_type=b"\x01"), header + _body(sequence=b"\x80" * 10 + b"\x00")]
    cols = ColumnReader(codec).read(bad)
    expected = codec.decode_batch(NAME, bad)
    decoded = 0
    for i, want in enumerate(expected):
        if isinstance(want, DecodeError):
            got = cols.error(i)
            assert got is not None and (type(got), got.reason) == (type(want), want.reason), i
        else:
            decoded += 1
            assert cols.error(i) is None and _same(cols.record(i), want), i
    assert 0 < decoded < len(bad)


def test_an_item_the_codec_reads_fills_every_column() -> None:
    codec = AvroCodec()
    record = {**_reading(random.Random(4)), "attributes": {"site": "north"}, "label": None}
    record["timestamp"] = 1_767_225_600_000
    record["value"] = 2.5
    items = [*codec.encode_batch(NAME, [record]), b"junk"]
    cols = ColumnReader(codec).read(items)
    assert set(cols.others) == {0, 1}  # a map with entries: the codec's
    assert _same([c[0] for c in cols.table_columns()], [c[0] for c in _expected_columns([record])])
    assert cols.values[0] == 2.5 and math.isnan(cols.values[1])
    assert cols.times.tolist() == [1_767_225_600_000, 0]
    assert cols.id_bytes.tolist() == [-1, -1]  # checked one by one downstream


def test_an_empty_batch_and_a_schema_of_another_layout() -> None:
    codec = AvroCodec()
    assert len(ColumnReader(codec).read([])) == 0
    changed = load_schema(NAME)
    changed["fields"].insert(6, {"name": "extra", "type": "string", "default": ""})
    try:
        ColumnSymbols(changed)
    except ValueError as e:
        assert "another layout" in str(e)
    else:
        raise AssertionError("a layout the decoder does not know was accepted")
    records = [{**_reading(random.Random(i)), "attributes": {}} for i in range(3)]
    items = codec.encode_batch(NAME, records)
    _, ok = decode_columns(items, b"\xc3\x01" + bytes(8), ColumnSymbols(load_schema(NAME)))
    assert not ok.any()  # another fingerprint: not read here

    class Future(AvroCodec):  # a current schema of a layout the decoder does not know
        def current(self, name: str) -> tuple[dict[str, Any], bytes]:
            return changed, super().current(name)[1]

    cols = ColumnReader(Future()).read(items)
    assert set(cols.others) == {0, 1, 2}  # all the codec's, and still right
    assert all(_same(cols.record(i), r) for i, r in enumerate(records))


def test_a_run_of_equal_names_is_read_once_and_refused_together() -> None:
    """A batch of one tenant and devices one after another (the runs decoded once), with a
    run whose tenant is not UTF-8: those items get the codec's answer, the others theirs."""
    codec = AvroCodec()
    base = {
        "reading_id": "r",
        "device_id": "d",
        "sensor_id": "d/t",
        "capability": "VOC",
        "value": 1.0,
        "timestamp": 1_767_225_600_000,
        "tenant_id": "zz",
    }
    good = codec.encode_batch(
        NAME, [{**base, "reading_id": f"r{i}", "device_id": f"d{i // 8}"} for i in range(40)]
    )
    bad = [g.replace(b"\x04zz", b"\x04\xff\xfe") for g in good[8:16]]
    assert all(b != g for b, g in zip(bad, good[8:16], strict=True))
    items = [*good[:8], *bad, *good[16:]]
    cols = ColumnReader(codec).read(items)
    expected = codec.decode_batch(NAME, items)
    for i, want in enumerate(expected):
        if isinstance(want, DecodeError):
            got = cols.error(i)
            assert got is not None and got.reason == want.reason, i
        else:
            assert _same(cols.record(i), want), i
    assert set(cols.others) == set(range(8, 16))
    assert cols.tenant_id[0] is cols.tenant_id[39]  # one run: one string


def test_a_reading_id_that_is_not_utf8_refuses_that_item_only() -> None:
    """Reading ids are read in one pass; one id that is not UTF-8 among good ones gets the
    codec's error, and every other item (before and after it) its record."""
    codec = AvroCodec()
    records = [
        {
            "reading_id": f"id{i:02d}",
            "device_id": "d",
            "sensor_id": "d/t",
            "capability": "VOC",
            "value": float(i),
            "timestamp": 1_767_225_600_000 + i,
            "tenant_id": "t",
        }
        for i in range(12)
    ]
    items = codec.encode_batch(NAME, records)
    items[5] = items[5].replace(b"id05", b"id\xff\xfe")
    cols = ColumnReader(codec).read(items)
    expected = codec.decode_batch(NAME, items)
    assert isinstance(expected[5], DecodeError) and set(cols.others) == {5}
    got = cols.error(5)
    assert got is not None and got.reason == expected[5].reason
    assert [cols.reading_id[i] for i in (0, 4, 6, 11)] == ["id00", "id04", "id06", "id11"]
    assert all(_same(cols.record(i), expected[i]) for i in range(12) if i != 5)


def test_a_type_changed_under_the_same_names_is_another_layout() -> None:
    """Same field names, other types: the vectorised path must not read the old layout."""
    changes = []
    optional_unit = load_schema(NAME)
    next(f for f in optional_unit["fields"] if f["name"] == "unit")["type"] = ["null", "string"]
    changes.append(optional_unit)
    single = load_schema(NAME)
    next(f for f in single["fields"] if f["name"] == "value")["type"] = "float"
    changes.append(single)
    swapped = load_schema(NAME)
    swapped["fields"][-1]["type"][1]["fields"].reverse()  # phase before scenario
    changes.append(swapped)
    for schema in changes:
        try:
            ColumnSymbols(schema)
        except ValueError:
            continue
        raise AssertionError(f"accepted {schema}")
    assert len(ColumnSymbols(load_schema(NAME)).phase) == len(PHASES) + 1


def test_a_phase_index_past_one_byte_is_left_to_the_codec() -> None:
    """With over 64 phases an index takes two bytes: a record cut after the first one is
    not a reading (the enum limit of one byte holds for the label's phase too)."""
    many = load_schema(NAME)
    label = many["fields"][-1]["type"][1]
    label["fields"][1]["type"]["symbols"] += [f"P{i}" for i in range(70)]
    header = AvroCodec().current(NAME)[1]
    cut = header + _body()[:-1] + b"\x02" + b"\x00" + b"\x80"  # label, "", half a varint
    whole = header + _body()[:-1] + b"\x02" + b"\x00" + b"\x04"  # label, "", phase 2
    cols, ok = decode_columns([cut, whole], header, ColumnSymbols(many))
    assert ok.tolist() == [False, True]
    assert cols.phase[1] == label["fields"][1]["type"]["symbols"][2]
