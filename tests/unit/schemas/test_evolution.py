"""Schema evolution through the codec: new readers read old records, old readers new ones."""

from __future__ import annotations

import copy
from typing import Any

import pytest

import schemas.codec
from schemas import AvroCodec, UnknownSchemaError, history_schemas, load_schema
from tests.unit.schemas.samples import READING, SAMPLES, single_object

NAME = "UniversalSensorReading"


def _v1() -> dict[str, Any]:
    """An older reading schema: before ``tenant_id`` and ``label`` were added (with defaults)."""
    schema = copy.deepcopy(load_schema(NAME))
    schema["fields"] = [f for f in schema["fields"] if f["name"] not in {"tenant_id", "label"}]
    return schema


def _v3() -> dict[str, Any]:
    """A newer reading schema: a field with a default and an appended Capability symbol."""
    schema = copy.deepcopy(load_schema(NAME))
    schema["fields"].append({"name": "firmware", "type": "string", "default": "unknown"})
    capability = next(f for f in schema["fields"] if f["name"] == "capability")
    capability["type"]["symbols"].append("RADIATION")
    return schema


V1_RECORD = {k: v for k, v in READING.items() if k not in {"tenant_id", "label"}}


def test_new_reader_reads_records_of_an_old_writer() -> None:
    data = single_object(_v1(), V1_RECORD)
    codec = AvroCodec()
    with pytest.raises(UnknownSchemaError, match="unknown schema fingerprint") as info:
        codec.decode(data, NAME)
    assert info.value.reason == "unknown_fingerprint"
    codec.register(_v1())
    assert codec.decode(data, NAME) == V1_RECORD | {"tenant_id": "default", "label": None}


def test_old_reader_reads_records_of_a_new_writer() -> None:
    codec = AvroCodec(extra_schemas=[_v3()])
    new = single_object(_v3(), READING | {"firmware": "2.1"})
    unseen_symbol = single_object(_v3(), READING | {"capability": "RADIATION"})
    decoded = codec.decode_batch(NAME, [new, unseen_symbol])
    assert decoded[0] == READING  # the new field is skipped
    assert decoded[1] == READING | {"capability": "UNKNOWN"}  # the enum default


def test_current_records_still_decode_after_registering_other_versions() -> None:
    codec = AvroCodec(extra_schemas=[_v1(), _v3()])
    assert codec.decode(codec.encode(NAME, READING), NAME) == READING


def test_versions_kept_in_history_are_known_without_register(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(schemas.codec, "history_schemas", lambda: [_v1()])
    data = single_object(_v1(), V1_RECORD)
    assert AvroCodec().decode(data, NAME)["tenant_id"] == "default"


def test_every_version_in_history_reads_as_the_current_schema() -> None:
    """The contract for schemas/history/: old writers stay readable by the current readers."""
    codec = AvroCodec()
    for old in history_schemas():
        name = old["name"].rsplit(".", 1)[-1]
        sample = {f["name"]: SAMPLES[name][f["name"]] for f in old["fields"]}
        assert isinstance(codec.decode(single_object(old, sample), name), dict)


def test_a_writer_symbol_the_reader_cannot_map_is_an_incompatible_schema() -> None:
    schema = copy.deepcopy(load_schema(NAME))
    label = next(f for f in schema["fields"] if f["name"] == "label")
    label["type"][1]["fields"][1]["type"]["symbols"].append("RECOVERY")  # Phase has no default
    codec = AvroCodec(extra_schemas=[schema])
    ok = single_object(schema, READING)
    bad = single_object(schema, READING | {"label": {"scenario": "s", "phase": "RECOVERY"}})
    out = codec.decode_batch(NAME, [ok, bad])
    assert out[0] == READING
    assert isinstance(out[1], UnknownSchemaError)
    assert out[1].reason == "incompatible_schema"
