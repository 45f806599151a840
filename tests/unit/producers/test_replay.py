"""The CSV replay source: streaming, bad rows with line numbers, option errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.replay import (
    BadRow,
    CsvSource,
    ReplayError,
    Row,
    parse_speed,
    parse_timestamp,
    replay,
    resolve_capability,
)
from schemas import AvroCodec

DATA = Path(__file__).resolve().parents[2] / "data"
NAB = DATA / "nab_machine_temperature_excerpt.csv"


def test_nab_excerpt_reads_with_original_event_times() -> None:
    rows = list(CsvSource(NAB, "timestamp", "value"))
    assert len(rows) == 40 and all(isinstance(r, Row) for r in rows)
    first = rows[0]
    assert isinstance(first, Row)
    assert first.line == 2 and first.value == pytest.approx(73.96732207)
    assert first.ts_ms == parse_timestamp("2013-12-02T21:15:00+00:00") == 1_386_018_900_000


def test_bad_rows_are_reported_with_their_line_numbers(tmp_path: Path) -> None:
    f = tmp_path / "log.csv"
    f.write_text(
        "when,site,reading\n"  # line 1: header, extra column allowed
        "2024-01-01T00:00:00Z,a,1.5\n"  # 2 ok
        "not a time,a,2.0\n"  # 3 bad time
        "2024-01-01T00:01:00Z,a,abc\n"  # 4 bad number
        "\n"  # 5 blank: ignored
        "2024-01-01T00:02:00Z,a\n"  # 6 too few fields
        "1704067380,a,4.0\n"  # 7 epoch seconds
        "2024-01-01T00:04:00Z,a,nan\n"  # 8 not a finite number
        "1704067440000,a,6.0\n"  # 9 epoch ms
    )
    items = list(CsvSource(f, "when", "reading"))
    bad = [(i.line, i.reason.split()[0]) for i in items if isinstance(i, BadRow)]
    assert bad == [(3, "unparseable"), (4, "unparseable"), (6, "2"), (8, "unparseable")]
    good = [(i.line, i.ts_ms, i.value) for i in items if isinstance(i, Row)]
    assert good == [
        (2, 1_704_067_200_000, 1.5),
        (7, 1_704_067_380_000, 4.0),
        (9, 1_704_067_440_000, 6.0),
    ]


def test_source_streams_instead_of_loading_the_file(tmp_path: Path) -> None:
    f = tmp_path / "big.csv"
    f.write_text("timestamp,value\n" + "".join(f"{1_700_000_000 + i},{i}\n" for i in range(5000)))
    it = iter(CsvSource(f, "timestamp", "value"))
    assert next(it) == Row(2, 1_700_000_000_000, 0.0)  # a generator: one row at a time


@pytest.mark.parametrize(
    ("args", "option"),
    [
        ((NAB.with_name("missing.csv"), "timestamp", "value"), "FILE"),
        ((NAB, "time", "value"), "--timestamp-column"),
        ((NAB, "timestamp", "v"), "--value-column"),
    ],
)
def test_bad_source_options_name_the_option(args: tuple, option: str) -> None:
    with pytest.raises(ReplayError, match=option):
        CsvSource(*args)


def test_capability_is_case_insensitive_and_generic_is_allowed() -> None:
    assert resolve_capability("generic") == "GENERIC"
    assert resolve_capability("Bearing_Temperature") == "BEARING_TEMPERATURE"
    for bad in ("unknown", "warp_drive"):
        with pytest.raises(ReplayError, match="--capability"):
            resolve_capability(bad)


def test_speed_option() -> None:
    assert parse_speed("max") == 0.0
    assert parse_speed("60") == 60.0
    for bad in ("0", "-2", "fast", "inf"):
        with pytest.raises(ReplayError, match="--speed"):
            parse_speed(bad)


class _CollectingProducer:
    """Stands in for RecordProducer: keeps what would be sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.delivered = 0
        self.last_error: str | None = None

    def send_batch(self, topic: str, keys: list[bytes], values: list[bytes]) -> None:
        self.sent.extend((topic, k, v) for k, v in zip(keys, values, strict=True))
        self.delivered += len(values)

    def flush(self, timeout: float = 0.0) -> int:
        return 0


def _replayed(tmp_path: Path, **kwargs: int) -> list[dict]:
    f = tmp_path / "log.csv"
    f.write_text("timestamp,value\n2014-01-01 00:00:00,1.5\n2014-01-01 00:05:00,2.5\n")
    producer = _CollectingProducer()
    codec = AvroCodec()
    report = replay(
        CsvSource(f, "timestamp", "value"),
        "dev-1",
        "GENERIC",
        producer,  # type: ignore[arg-type]
        codec,
        "readings",
        **kwargs,
    )
    assert report.sent == report.delivered == 2
    return [codec.decode(v, "UniversalSensorReading") for _, _, v in producer.sent]


def test_replay_keeps_original_event_times_by_default(tmp_path: Path) -> None:
    got = _replayed(tmp_path)
    t0 = 1_388_534_400_000  # 2014-01-01T00:00:00Z
    assert [r["timestamp"] for r in got] == [t0, t0 + 300_000]
    assert got[0]["reading_id"] == f"dev-1/generic@{t0}"
    assert [r["value"] for r in got] == [1.5, 2.5]


def test_replay_time_offset_shifts_event_times_and_ids(tmp_path: Path) -> None:
    day = 86_400_000
    got = _replayed(tmp_path, time_offset_ms=day)
    t0 = 1_388_534_400_000 + day
    assert [r["timestamp"] for r in got] == [t0, t0 + 300_000]
    assert [r["reading_id"] for r in got] == [
        f"dev-1/generic@{t0}",
        f"dev-1/generic@{t0 + 300_000}",
    ]
