"""MQTT payloads → readings: JSON (one, a list, a batch object), Avro, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from producers.mqtt_payload import MAX_BATCH, PayloadError, enum_symbols, parse_message
from schemas import AvroCodec

TOPIC = "devices/bp-001/telemetry"
T = 1_700_000_000_000
ROOT = Path(__file__).resolve().parents[3]


def one(**overrides: object) -> dict:
    reading: dict = {"capability": "cell_voltage", "value": 3.71, "unit": "V", "timestamp": T}
    reading.update(overrides)
    return {k: v for k, v in reading.items() if v is not ...}


def parse(doc: object, topic: str = TOPIC) -> list[dict]:
    return parse_message(topic, json.dumps(doc).encode())


def test_one_reading_fills_defaults_and_encodes() -> None:
    (r,) = parse(one())
    assert r["device_id"] == "bp-001"
    assert r["capability"] == "CELL_VOLTAGE"  # case-insensitive, stored as the symbol
    assert r["reading_id"] == f"bp-001/CELL_VOLTAGE@{T}"
    assert (r["sensor_id"], r["quality"], r["tenant_id"], r["unit"]) == (
        "bp-001",
        "GOOD",
        "default",
        "V",
    )
    codec = AvroCodec()
    assert codec.decode(codec.encode("UniversalSensorReading", r), "UniversalSensorReading") == r


def test_same_message_twice_gives_the_same_ids() -> None:
    doc = [one(), one(capability="CELL_TEMPERATURE", value=25)]
    assert [r["reading_id"] for r in parse(doc)] == [r["reading_id"] for r in parse(doc)]


def test_batch_as_list_and_as_object_with_given_ids_and_iso_time() -> None:
    doc = [
        one(reading_id="r-1", sequence=7, attributes={"fw": "1.2"}),
        one(timestamp="2023-11-14T22:13:20.5+00:00", sensor_id="cell-3", quality="suspect"),
    ]
    as_list = parse(doc)
    assert parse({"readings": doc}) == as_list
    assert [r["reading_id"] for r in as_list] == ["r-1", f"bp-001/CELL_VOLTAGE@{T + 500}"]
    assert as_list[0]["attributes"] == {"fw": "1.2"} and as_list[0]["sequence"] == 7
    assert as_list[1]["timestamp"] == T + 500
    assert (as_list[1]["sensor_id"], as_list[1]["quality"]) == ("cell-3", "SUSPECT")


def test_avro_single_object_is_accepted_for_its_own_device() -> None:
    codec = AvroCodec()
    reading = parse(one())[0]
    assert parse_message(TOPIC, codec.encode("UniversalSensorReading", reading), codec) == [reading]


@pytest.mark.parametrize(
    ("payload", "reason", "words"),
    [
        (b"\xff\xfe{", "not_utf8", "neither Avro nor UTF-8"),
        (b'{"capability": ', "invalid_json", "not JSON"),
        (b"[]", "empty_batch", "no reading"),
        (b'{"readings": [], "site": "x"}', "bad_shape", "only 'readings'"),
        (b"[42]", "bad_shape", "reading 0: expected a JSON object, got int"),
        (json.dumps(one(timestamp=...)).encode(), "missing_field", "missing ['timestamp']"),
        (json.dumps(one(valeu=1)).encode(), "unknown_field", "unknown field(s) ['valeu']"),
        (json.dumps(one(capability="VOLTS")).encode(), "unknown_capability", "'VOLTS'"),
        (json.dumps(one(value="3.7")).encode(), "bad_value", 'got "3.7"'),
        (json.dumps(one(value=True)).encode(), "bad_value", "finite number"),
        (b'{"capability": "VOLTAGE", "value": NaN, "timestamp": 1}', "bad_value", "NaN"),
        (json.dumps(one(timestamp=1.7e12)).encode(), "bad_timestamp", "epoch milliseconds"),
        (json.dumps(one(timestamp=-1)).encode(), "bad_timestamp", "epoch milliseconds"),
        (json.dumps(one(timestamp="2023-11-14 22:13")).encode(), "bad_timestamp", "with a zone"),
        (json.dumps(one(device_id="bp-002")).encode(), "device_mismatch", "'bp-002'"),
        (json.dumps(one(quality="FINE")).encode(), "bad_field", "Quality"),
        (json.dumps(one(unit=3)).encode(), "bad_field", "unit must be a string"),
        (json.dumps(one(sequence=-4)).encode(), "bad_field", "sequence"),
        (json.dumps(one(attributes={"fw": 1})).encode(), "bad_field", "attributes"),
    ],
)
def test_each_refusal_has_its_reason(payload: bytes, reason: str, words: str) -> None:
    with pytest.raises(PayloadError) as caught:
        parse_message(TOPIC, payload)
    assert caught.value.reason == reason
    assert words in caught.value.detail


@pytest.mark.parametrize(
    ("cut", "reason"), [(lambda b: b[:-12], "corrupt_body"), (lambda b: b[:4], "not_avro")]
)
def test_broken_avro_is_refused_with_the_codecs_reason(cut: object, reason: str) -> None:
    codec = AvroCodec()
    data = codec.encode("UniversalSensorReading", parse(one())[0])
    with pytest.raises(PayloadError) as caught:
        parse_message(TOPIC, cut(data), codec)  # type: ignore[operator]
    assert caught.value.reason == reason


def test_one_bad_reading_refuses_the_whole_batch_and_names_it() -> None:
    with pytest.raises(PayloadError, match=r"reading 2: capability"):
        parse([one(), one(), one(capability="NOPE")])


def test_too_large_batch_and_bad_topics() -> None:
    with pytest.raises(PayloadError) as caught:
        parse([one()] * (MAX_BATCH + 1))
    assert caught.value.reason == "batch_too_large"
    for topic in ("devices/bp-001", "devices//telemetry", "things/bp-001/telemetry"):
        with pytest.raises(PayloadError) as caught:
            parse(one(), topic=topic)
        assert caught.value.reason == "bad_topic"


def test_avro_of_another_device_is_refused() -> None:
    codec = AvroCodec()
    other = dict(parse(one())[0], device_id="bp-002")
    with pytest.raises(PayloadError) as caught:
        parse_message(TOPIC, codec.encode("UniversalSensorReading", other), codec)
    assert caught.value.reason == "device_mismatch"


def test_json_schema_file_lists_the_avro_symbols() -> None:
    schema = json.loads((ROOT / "schemas" / "mqtt_reading.schema.json").read_text())
    props = schema["$defs"]["reading"]["properties"]
    assert set(props["capability"]["enum"]) == enum_symbols("Capability")
    assert set(props["device_type"]["enum"]) == enum_symbols("DeviceType")
    assert set(props["quality"]["enum"]) == enum_symbols("Quality")
    assert set(schema["$defs"]["reading"]["required"]) == {"capability", "value", "timestamp"}


def test_a_gateway_of_one_tenant_stamps_its_tenant_and_refuses_another() -> None:
    topic = "devices/bp-001/telemetry"
    plain = json.dumps(one()).encode()
    assert parse_message(topic, plain)[0]["tenant_id"] == "default"
    assert parse_message(topic, plain, tenant="utility-a")[0]["tenant_id"] == "utility-a"
    own = json.dumps(one(tenant_id="utility-a")).encode()
    assert parse_message(topic, own, tenant="utility-a")[0]["tenant_id"] == "utility-a"
    foreign = json.dumps([one(), one(tenant_id="utility-b")]).encode()
    assert parse_message(topic, foreign)[1]["tenant_id"] == "utility-b"  # no --tenant: as sent
    with pytest.raises(PayloadError, match="reading 1: tenant_id 'utility-b'") as caught:
        parse_message(topic, foreign, tenant="utility-a")
    assert caught.value.reason == "tenant_mismatch"
