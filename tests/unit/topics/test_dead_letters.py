"""Dead letters read back: headers parsed, filtered, summarised, re-injected (no broker)."""

from __future__ import annotations

import datetime as dt
import json
from typing import cast

import pytest

from core.errors import EnviroStreamError
from envirostream.cli import main
from envirostream.commands.dlq import device_decoder
from schemas import AvroCodec
from tests.unit.schemas.samples import READING, SAMPLES
from topics import AGGREGATES, DLQ, READINGS
from topics.dead_letters import (
    NO_REASON,
    NO_TOPIC,
    UNDECODABLE,
    DeadLetterRecord,
    LetterFilter,
    parse_since,
    replay,
    summarise,
)
from topics.producer import RecordProducer

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
NOW_MS = 1_772_366_400_000  # 2026-03-01T12:00:00Z, written out by hand


def letter(
    offset: int,
    reason: str = "late",
    *,
    ts: int = NOW_MS,
    topic: str | None = READINGS,
    key: bytes | None = b"d1",
    value: bytes | None = b"v",
) -> DeadLetterRecord:
    return DeadLetterRecord(
        offset % 2, offset, ts, key, value, reason, "msg", "window", topic, 3, 100 + offset
    )


class FakeProducer:
    """Records what would go to Kafka; ``lost`` records are reported undelivered."""

    def __init__(self, lost: int = 0) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list[tuple[str, bytes]]]] = []
        self.calls = 0
        self.lost = lost

    def send_batch(self, topic: str, keys: list, values: list, headers: list) -> None:
        self.calls += 1
        self.sent += [(topic, k, v, h) for k, v, h in zip(keys, values, headers, strict=True)]

    def flush(self, timeout: float = 60.0) -> int:
        return self.lost


def as_producer(fake: FakeProducer) -> RecordProducer:
    return cast(RecordProducer, fake)


# -- headers --------------------------------------------------------------------------------
def test_headers_of_the_worker_are_read_back() -> None:
    got = DeadLetterRecord.from_message(
        partition=1,
        offset=9,
        timestamp_ms=5,
        key=None,
        value=b"x",
        headers=[
            ("error.reason", b"non_finite_value"),
            ("error.message", b"value is nan"),
            ("error.stage", b"validate"),
            ("source.topic", b"telemetry.readings"),
            ("source.partition", b"3"),
            ("source.offset", b"77"),
        ],
    )
    assert (got.reason, got.message, got.stage) == ("non_finite_value", "value is nan", "validate")
    assert (got.source_topic, got.source_partition, got.source_offset) == (READINGS, 3, 77)


def test_a_record_without_the_headers_is_still_a_letter() -> None:
    got = DeadLetterRecord.from_message(
        partition=0,
        offset=0,
        timestamp_ms=0,
        key=None,
        value=None,
        headers=[("source.partition", b"three")],
    )
    assert got.reason == NO_REASON
    assert got.source_topic is None
    assert got.source_partition is None


# -- --since --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "back_ms"),
    [("45s", 45_000), ("30m", 1_800_000), ("2h", 7_200_000), ("1.5h", 5_400_000),
     ("7d", 604_800_000), ("1w", 604_800_000), (" 2 h ", 7_200_000)],
)  # fmt: skip
def test_relative_since_counts_back_from_now(text: str, back_ms: int) -> None:
    assert parse_since(text, NOW) == NOW_MS - back_ms


@pytest.mark.parametrize(
    "text",
    ["2026-03-01T11:00:00Z", "2026-03-01T11:00:00+00:00", "2026-03-01T12:00:00+01:00",
     "2026-03-01T11:00:00", "2026-03-01 11:00"],
)  # fmt: skip
def test_iso_since_is_an_absolute_time_utc_when_no_zone(text: str) -> None:
    assert parse_since(text, NOW) == NOW_MS - 3_600_000


@pytest.mark.parametrize("text", ["", "2x", "h", "-2h", "last tuesday", "2026-13-01"])
def test_a_bad_since_names_the_option_and_the_forms(text: str) -> None:
    with pytest.raises(EnviroStreamError, match=r"--since .*ISO time.*30m, 2h, 7d"):
        parse_since(text, NOW)


def test_a_bad_since_stops_the_command_before_any_broker_is_asked(
    capsys: pytest.CaptureFixture,
) -> None:
    # The default bootstrap has no broker here: exit 1 proves --since was checked first.
    assert main(["dlq", "replay", "--since", "soon", "--broker-timeout", "0.1"]) == 1
    assert "--since 'soon'" in capsys.readouterr().err


# -- filter ---------------------------------------------------------------------------------
def test_the_filter_selects_by_reason_and_since_inclusive() -> None:
    letters = [
        letter(0, "late", ts=NOW_MS - 1),
        letter(1, "late", ts=NOW_MS),
        letter(2, "not_avro", ts=NOW_MS + 1),
        letter(3, "future_timestamp", ts=NOW_MS),
    ]
    where = LetterFilter(reasons=frozenset({"late", "not_avro"}), since_ms=NOW_MS)
    assert [x.offset for x in letters if where.matches(x)] == [1, 2]
    assert [x.offset for x in letters if LetterFilter().matches(x)] == [0, 1, 2, 3]


# -- summary --------------------------------------------------------------------------------
def test_the_summary_counts_by_reason_device_topic_with_the_real_codec() -> None:
    codec = AvroCodec()
    reading = codec.encode("UniversalSensorReading", READING)  # device grid-1
    nan = codec.encode("UniversalSensorReading", READING | {"value": float("nan")})
    aggregate = codec.encode("WindowAggregate", SAMPLES["WindowAggregate"])  # device "d"
    letters = [
        letter(0, "late", value=reading, ts=NOW_MS - 5_000),
        letter(1, "non_finite_value", value=nan, ts=NOW_MS + 7_000),
        letter(2, "not_avro", value=b"\x00garbage"),
        letter(3, "corrupt_body", value=reading[:20]),
        letter(4, "corrupt_body", value=aggregate, topic=AGGREGATES),
        letter(5, "decode_error", value=None, topic=None),
        letter(6, "late", value=reading, ts=NOW_MS - 9_000),  # before --since: not counted
    ]
    s = summarise(letters, LetterFilter(since_ms=NOW_MS - 5_000), device_decoder(codec))
    assert s.total == 6
    assert dict(s.by_reason) == {
        "late": 1, "non_finite_value": 1, "not_avro": 1, "corrupt_body": 2, "decode_error": 1,
    }  # fmt: skip
    assert dict(s.by_device) == {"grid-1": 2, "d": 1, UNDECODABLE: 3}
    assert dict(s.by_topic) == {READINGS: 4, AGGREGATES: 1, NO_TOPIC: 1}
    assert (s.oldest_ms, s.newest_ms) == (NOW_MS - 5_000, NOW_MS + 7_000)
    data = json.loads(s.to_json())
    assert list(data["by_device"]) == [UNDECODABLE, "grid-1", "d"]  # largest first
    assert (data["oldest"], data["newest"]) == (
        "2026-03-01T11:59:55.000+00:00",
        "2026-03-01T12:00:07.000+00:00",
    )


def test_the_table_shows_every_reason_and_the_top_devices() -> None:
    def by_device(x: DeadLetterRecord) -> str:
        return f"dev-{x.offset % 5}"

    letters = [letter(i, "late" if i % 3 else "not_avro") for i in range(25)]
    table = summarise(letters, LetterFilter(), by_device).to_table(top_devices=2)
    lines = table.splitlines()
    assert lines[0].startswith("dead letters: 25 ")
    assert any(line.split() == ["late", "16"] for line in lines)
    assert any(line.split() == ["not_avro", "9"] for line in lines)
    assert sum(line.startswith("dev-") for line in lines) == 2
    assert "... 3 more devices, 15 letters" in table
    assert summarise([], LetterFilter(), by_device).to_table() == "no dead letters match\n"


# -- replay ---------------------------------------------------------------------------------
def test_replay_sends_original_key_and_bytes_to_the_source_topic() -> None:
    letters = [
        letter(0, "future_timestamp", key=b"d1", value=b"one"),
        letter(1, "future_timestamp", key=None, value=b"two"),
        letter(2, "late", key=b"d2", value=b"three", topic=AGGREGATES),
        letter(3, "not_avro"),
    ]
    fake = FakeProducer()
    where = LetterFilter(reasons=frozenset({"future_timestamp", "late"}))
    report = replay(letters, where, as_producer(fake), {READINGS, AGGREGATES})
    assert [(t, k, v) for t, k, v, _ in fake.sent] == [
        (READINGS, b"d1", b"one"),
        (READINGS, None, b"two"),
        (AGGREGATES, b"d2", b"three"),
    ]
    assert fake.sent[1][3] == [("envirostream.replayed_from", f"{DLQ}:1:1".encode())]
    assert dict(report.sent) == {"future_timestamp": 2, "late": 1}
    assert (report.total_sent, report.undelivered, dict(report.skipped)) == (3, 0, {})


def test_replay_skips_letters_it_cannot_route_and_says_why() -> None:
    letters = [letter(0, topic=None), letter(1, topic="gone.topic"), letter(2)]
    fake = FakeProducer()
    report = replay(letters, LetterFilter(), as_producer(fake), {READINGS})
    assert [x[2] for x in fake.sent] == [b"v"]
    assert dict(report.skipped) == {
        "late: no source.topic header": 1,
        "late: source topic gone.topic does not exist": 1,
    }


def test_a_dry_run_counts_what_it_would_send_and_sends_nothing() -> None:
    letters = [letter(i, "late") for i in range(4)]
    report = replay(letters, LetterFilter(), None, {READINGS})
    assert report.dry_run
    assert dict(report.sent) == {"late": 4}
    assert "would send" in report.to_table()


def test_replay_sends_in_batches_and_reports_what_was_not_delivered() -> None:
    letters = [letter(i) for i in range(7)]
    fake = FakeProducer(lost=2)
    report = replay(letters, LetterFilter(), as_producer(fake), {READINGS}, batch=3)
    assert fake.calls == 3  # 3 + 3 + 1
    assert [x[3][0][1] for x in fake.sent] == [f"{DLQ}:{i % 2}:{i}".encode() for i in range(7)]
    assert report.undelivered == 2
    assert "NOT DELIVERED: 2" in report.to_table()
