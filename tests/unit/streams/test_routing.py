"""Readings on another partition than their device's are moved there and counted once."""

from __future__ import annotations

from typing import Any

from schemas import AvroCodec
from streams.readings import InputRecord, ReadingsProcessor
from streams.routing import REKEYED_HEADER, is_rekeyed, murmur2_partition
from streams.validate import EventTimeBounds

TOPIC = "telemetry.readings"
MINUTE = 60_000
T0 = 1_767_225_600_000  # 2026-01-01
PARTS = 4


def reading(device: str, ts: int, value: float = 1.0) -> dict[str, Any]:
    return {
        "reading_id": f"{device}@{ts}",
        "device_id": device,
        "device_type": "MACHINE",
        "sensor_id": f"{device}/t",
        "capability": "TEMPERATURE",
        "value": value,
        "unit": "degC",
        "timestamp": ts,
        "sequence": 0,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }


def record(
    codec: AvroCodec, partition: int, offset: int, rec: dict[str, Any], *, key: bytes | None = None
) -> InputRecord:
    value = codec.encode("UniversalSensorReading", rec)
    return InputRecord(TOPIC, partition, offset, key, value, rekeyed=False)


def processor(codec: AvroCodec, partitions: int = PARTS) -> ReadingsProcessor:
    bounds = EventTimeBounds(floor_ms=0, max_future_ms=300_000)
    p = ReadingsProcessor(codec, window_ms=MINUTE, lateness_ms=0, window_label="1m", bounds=bounds)
    p.router.set_partitions(partitions)
    return p


def test_murmur2_is_the_java_partitioner() -> None:
    # Kafka's own test vectors (org.apache.kafka.common.utils.UtilsTest#testMurmur2):
    # murmur2("21") = -973932308, murmur2("foobar") = -790332482.
    assert murmur2_partition(b"21", 2**31 - 1) == (-973932308 & 0x7FFFFFFF) % (2**31 - 1)
    assert murmur2_partition(b"foobar", 1000) == (-790332482 & 0x7FFFFFFF) % 1000


def owned_by(partition: int) -> str:
    """A device id whose murmur2 partition is ``partition``."""
    i = 0
    while murmur2_partition(f"dev-{i}".encode(), PARTS) != partition:
        i += 1
    return f"dev-{i}"


def test_a_misrouted_reading_is_moved_not_windowed_nor_stored_here() -> None:
    codec = AvroCodec()
    p = processor(codec)
    mine, theirs = owned_by(0), owned_by(2)
    batch = [
        record(codec, 0, 0, reading(mine, T0), key=mine.encode()),
        record(codec, 0, 1, reading(theirs, T0)),  # null key, landed on 0
        record(codec, 0, 2, reading(theirs, T0 + 1000), key=b"whatever"),
    ]
    out = p.process(batch, T0 / 1000)
    assert [(m.device_id, m.partition, m.record.offset) for m in out.rekeyed] == [
        (theirs, 2, 1),
        (theirs, 2, 2),
    ]
    assert out.accepted == 1
    assert [c for block in out.rows for c in block.columns[2]] == [mine]
    assert dict(out.rekeyed[0].headers()) == {REKEYED_HEADER: b"telemetry.readings/0/1"}
    assert p.commit_offset((TOPIC, 0)) == 0  # the open window of `mine` holds offset 0
    p.process([record(codec, 0, 3, reading(mine, T0 + MINUTE))], T0 / 1000)
    assert p.commit_offset((TOPIC, 0)) == 3  # moved readings hold nothing back


def test_partitions_unknown_means_every_reading_stays() -> None:
    codec = AvroCodec()
    p = processor(codec, partitions=0)
    out = p.process([record(codec, 0, 0, reading(owned_by(3), T0))], T0 / 1000)
    assert out.rekeyed == [] and out.accepted == 1


def test_a_rekeyed_reading_is_never_moved_again() -> None:
    codec = AvroCodec()
    p = processor(codec)
    theirs = owned_by(1)
    rec = InputRecord(
        TOPIC,
        0,
        0,
        theirs.encode(),
        codec.encode("UniversalSensorReading", reading(theirs, T0)),
        rekeyed=True,
    )
    out = p.process([rec], T0 / 1000)
    assert out.rekeyed == [] and out.accepted == 1


def test_a_rekeyed_copy_sent_twice_is_counted_once() -> None:
    codec = AvroCodec()
    p = processor(codec)
    dev = owned_by(1)

    def moved(offset: int, second: int, value: float) -> InputRecord:
        value_bytes = codec.encode(
            "UniversalSensorReading", reading(dev, T0 + second * 1000, value)
        )
        return InputRecord(TOPIC, 1, offset, dev.encode(), value_bytes, rekeyed=True)

    first = p.process([moved(0, 0, 1.0), moved(1, 1, 3.0)], T0 / 1000)
    again = p.process([moved(2, 0, 1.0), moved(3, 1, 3.0), moved(4, 2, 5.0)], T0 / 1000)
    assert first.accepted == 2 and again.accepted == 1 and again.duplicates == 2
    closed = p.process([moved(5, 60, 0.0)], T0 / 1000).aggregates
    assert [(a["count"], a["min"], a["max"], a["mean"]) for a in closed] == [(3, 1.0, 5.0, 3.0)]
    assert len(p.rekeyed_seen) == 1  # only the still open window's id is remembered


def test_is_rekeyed_reads_the_header() -> None:
    assert is_rekeyed([(REKEYED_HEADER, b"t/0/1")])
    assert not is_rekeyed([("other", b"x")]) and not is_rekeyed(None) and not is_rekeyed(())
