"""A wide CSV replayed into a running pipeline: every (time, capability) cell is stored.

The worker has already stored another device's readings (a single-column replay) when
``envirostream replay --columns-file … --separator ';' --device-type machine`` sends a
SKAB-like log (one time column, four sensor columns, one unparseable cell): each parsed
cell must be one row of ``readings`` with its value, and the bad cell none.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings, settings_environ
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import REPO, WorkerProcess, wait_for_worker
from topics import TopicAdmin, topic_specs

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z
ROWS = 40
COLUMNS = {
    "Pressure": "PRESSURE",
    "Current": "MOTOR_CURRENT",
    "Volume Flow RateRMS": "FLOW",
    "Thermocouple": "COOLANT_TEMPERATURE",
}
BAD = (7, "Current")  # row 7's current does not parse


def _stamp(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _value(row: int, j: int) -> float:
    return round(1.0 + 10 * j + 0.25 * row, 3)


def envirostream(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-m", "envirostream", *args],
        env=settings_environ(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, f"envirostream {' '.join(args)} exited {out.returncode}:\n{out}"
    return out


@pytest.fixture(scope="module")
def worker(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    TopicAdmin(services.bootstrap_servers).create_missing(topic_specs(services))
    ClickHouseSink(get_client(services), services).setup()
    proc = WorkerProcess(services, tmp_path_factory.mktemp("logs") / "worker.log")
    try:
        yield proc
    finally:
        proc.stop()


def test_every_cell_of_a_wide_csv_is_stored(
    services: Settings, worker: WorkerProcess, tmp_path: Path
) -> None:
    settings = services
    client = get_client(settings)

    # readings the pipeline has already seen: another device, single-column mode
    other = tmp_path / "other.csv"
    other.write_text(
        "timestamp,value\n"
        + "".join(f"{_stamp(T0 - 3_600_000 + i * 60_000)},{20 + i}\n" for i in range(30))
    )
    envirostream(settings, "replay", str(other), "--device", "other", "--capability", "GENERIC")

    def count(device: str) -> int:
        sql = f"SELECT count() FROM readings FINAL WHERE device_id = '{device}'"
        return int(str(client.command(sql)))

    wait_for_worker(lambda: count("other") >= 30, 120, "the other device's readings", worker)

    wide = tmp_path / "rig.csv"
    header = ["datetime", *COLUMNS, "anomaly"]
    lines = [";".join(header)]
    expected: set[tuple[int, str, float]] = set()
    for row in range(ROWS):
        ts = T0 + row * 1000
        cells = []
        for j, (column, cap) in enumerate(COLUMNS.items()):
            if (row, column) == BAD:
                cells.append("n/a")
                continue
            cells.append(str(_value(row, j)))
            expected.add((ts, cap, _value(row, j)))
        lines.append(";".join([_stamp(ts), *cells, "0"]))
    wide.write_text("\n".join(lines) + "\n")
    mapping = tmp_path / "rig.map"
    mapping.write_text(
        "# the rig's columns\n" + "".join(f"{c}={cap}\n" for c, cap in COLUMNS.items())
    )
    out = envirostream(
        settings, "replay", str(wide), "--device", "rig-1", "--columns-file", str(mapping),
        "--separator", ";", "--timestamp-column", "datetime", "--device-type", "machine",
    )  # fmt: skip
    assert f"sent {len(expected)} readings, skipped 1 bad rows" in out.stdout
    assert f"rig.csv:{BAD[0] + 2}: skipped: column 'Current'" in out.stderr

    wait_for_worker(lambda: count("rig-1") >= len(expected), 120, "the wide CSV", worker)
    rows = client.query(
        "SELECT toUnixTimestamp64Milli(ts), toString(capability), value, device_type "
        "FROM readings FINAL WHERE device_id = 'rig-1'"
    ).result_rows
    assert {(int(t), str(c), round(float(v), 3)) for t, c, v, _ in rows} == expected
    assert len(rows) == len(expected)
    assert {str(d) for *_, d in rows} == {"MACHINE"}
    assert count("other") == 30  # the device seen before is untouched
