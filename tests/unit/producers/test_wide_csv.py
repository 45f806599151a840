"""Wide CSV replay: one time column, many sensor columns, one device; mapping and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from producers.replay import BadRow, ReplayError
from producers.wide_csv import (
    WideCsvSource,
    WideRow,
    parse_column_map,
    read_columns_file,
    replay_wide,
    resolve_device_type,
)
from schemas import AvroCodec

SKAB_LIKE = (
    "datetime;Pressure;Current;Volume Flow RateRMS;anomaly\n"  # 1
    "2020-03-09 10:14:33;0.05;1.33;32.0;0\n"  # 2
    "2020-03-09 10:14:34;0.38;oops;32.5;0\n"  # 3: Current does not parse
    "yesterday;0.10;1.30;31.0;0\n"  # 4: bad time, the row is skipped
    "2020-03-09 10:14:36;-0.27;1.35;;1\n"  # 5: flow empty
)
MAP = {"Pressure": "PRESSURE", "Current": "MOTOR_CURRENT", "Volume Flow RateRMS": "FLOW"}
T0 = 1_583_748_873_000  # 2020-03-09T10:14:33Z


def _file(tmp_path: Path, text: str = SKAB_LIKE) -> Path:
    f = tmp_path / "0.csv"
    f.write_text(text)
    return f


def test_column_map_from_option_and_file(tmp_path: Path) -> None:
    assert parse_column_map("Pressure=pressure, Current=MOTOR_CURRENT") == {
        "Pressure": "PRESSURE",
        "Current": "MOTOR_CURRENT",
    }
    mapping = tmp_path / "rig.map"
    mapping.write_text(
        "# SKAB rig\nPressure=PRESSURE\n\nVolume Flow RateRMS = FLOW  # l/min\nCurrent=current\n"
    )
    assert read_columns_file(mapping) == {
        "Pressure": "PRESSURE",
        "Volume Flow RateRMS": "FLOW",
        "Current": "CURRENT",
    }


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("Pressure=BAROMETER", "column 'Pressure'"),  # unknown capability names the column
        ("Pressure=UNKNOWN", "column 'Pressure'"),
        ("Pressure", "is not column=CAPABILITY"),
        ("Pressure=PRESSURE,Current=PRESSURE", "both map to PRESSURE"),
        ("Pressure=PRESSURE,Pressure=FLOW", "mapped twice"),
        (" , ", "no column=CAPABILITY"),
    ],
)
def test_bad_column_maps_are_refused_with_the_option(text: str, needle: str) -> None:
    with pytest.raises(ReplayError, match="--columns") as err:
        parse_column_map(text)
    assert needle in str(err.value)


def test_a_bad_mapping_file_line_is_named(tmp_path: Path) -> None:
    mapping = tmp_path / "rig.map"
    mapping.write_text("Pressure=PRESSURE\nCurrent=AMPS\n")
    with pytest.raises(ReplayError, match=r"--columns-file rig.map line 2: column 'Current'"):
        read_columns_file(mapping)
    with pytest.raises(ReplayError, match="--columns-file"):
        read_columns_file(tmp_path / "missing.map")


def test_a_mapped_column_absent_from_the_header_fails_before_reading(tmp_path: Path) -> None:
    f = _file(tmp_path)
    with pytest.raises(ReplayError, match=r"--columns: column\(s\) \['Voltage'\] not in"):
        WideCsvSource(f, "datetime", {**MAP, "Voltage": "VOLTAGE"}, separator=";")
    with pytest.raises(ReplayError, match="--timestamp-column 'timestamp'"):
        WideCsvSource(f, "timestamp", MAP, separator=";")
    # the wrong separator: the header is one column, so the mapped ones are missing
    with pytest.raises(ReplayError, match="separator ','"):
        WideCsvSource(f, "datetime", MAP)
    with pytest.raises(ReplayError, match="--separator"):
        WideCsvSource(f, "datetime", MAP, separator=";;")


def test_bad_cells_are_reported_with_line_and_column_and_the_rest_counts(tmp_path: Path) -> None:
    items = list(WideCsvSource(_file(tmp_path), "datetime", MAP, separator=";"))
    bad = [(i.line, i.reason) for i in items if isinstance(i, BadRow)]
    assert bad == [
        (3, "column 'Current': unparseable value 'oops'"),
        (4, "unparseable timestamp 'yesterday'"),
        (5, "column 'Volume Flow RateRMS': unparseable value ''"),
    ]
    rows = [i for i in items if isinstance(i, WideRow)]
    assert [(r.line, r.ts_ms) for r in rows] == [(2, T0), (3, T0 + 1000), (5, T0 + 3000)]
    assert rows[0].values == (("PRESSURE", 0.05), ("MOTOR_CURRENT", 1.33), ("FLOW", 32.0))
    assert rows[1].values == (("PRESSURE", 0.38), ("FLOW", 32.5))
    assert rows[2].values == (("PRESSURE", -0.27), ("MOTOR_CURRENT", 1.35))


def test_device_type_is_checked() -> None:
    assert resolve_device_type("Machine") == "MACHINE"
    with pytest.raises(ReplayError, match="--device-type 'PUMP'"):
        resolve_device_type("PUMP")


class _CollectingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.delivered = 0
        self.last_error: str | None = None

    def send_batch(self, topic: str, keys: list[bytes], values: list[bytes]) -> None:
        self.sent.extend((topic, k, v) for k, v in zip(keys, values, strict=True))
        self.delivered += len(values)

    def flush(self, timeout: float = 0.0) -> int:
        return 0


def test_replay_sends_one_reading_per_cell_with_stable_ids(tmp_path: Path) -> None:
    producer = _CollectingProducer()
    codec = AvroCodec()
    bad: list[BadRow] = []
    report = replay_wide(
        WideCsvSource(_file(tmp_path), "datetime", MAP, separator=";"),
        "rig-1",
        producer,  # type: ignore[arg-type]
        codec,
        "readings",
        device_type="MACHINE",
        on_bad_row=bad.append,
    )
    assert report.sent == report.delivered == 7  # 3 + 2 + 2 cells
    assert report.skipped == len(bad) == 3
    got = [codec.decode(v, "UniversalSensorReading") for _, _, v in producer.sent]
    assert {k for _, k, _ in producer.sent} == {b"rig-1"}
    assert [(r["capability"], r["timestamp"], r["value"]) for r in got[:3]] == [
        ("PRESSURE", T0, 0.05),
        ("MOTOR_CURRENT", T0, 1.33),
        ("FLOW", T0, 32.0),
    ]
    assert got[0]["reading_id"] == f"rig-1/pressure@{T0}"
    assert got[0]["sensor_id"] == "rig-1/pressure"
    assert {r["device_type"] for r in got} == {"MACHINE"}
    assert [r["sequence"] for r in got] == [0, 0, 0, 1, 1, 2, 2]  # one number per row
    ids = [r["reading_id"] for r in got]
    assert len(set(ids)) == len(ids)
    # a second replay yields the same ids (the sinks deduplicate)
    again = _CollectingProducer()
    replay_wide(
        WideCsvSource(_file(tmp_path), "datetime", MAP, separator=";"),
        "rig-1",
        again,  # type: ignore[arg-type]
        codec,
        "readings",
    )
    assert [codec.decode(v, "UniversalSensorReading")["reading_id"] for _, _, v in again.sent] == (
        ids
    )
