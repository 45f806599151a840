"""A day in the life of a pipeline whose devices do not share one clock (real broker, store
and worker; nothing mocked).

In order, against one worker that keeps running: a live fleet streams; twelve devices send
one reading stamped in the year 2100 and one at the largest long; the live fleet goes on;
an operator replays a 2014 CSV with the user's own command; a gateway whose uplink dropped
flushes its buffer after its windows were idle-closed; a device whose clock lags the others
by ten minutes streams throughout. Every valid reading must be stored once, every aggregate
must equal statistics computed here from what was sent, and the clock faults must sit in the
DLQ with their reasons.
"""

from __future__ import annotations

import csv
import math
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings, settings_environ
from infra.harness import REPO_ROOT
from schemas import AvroCodec
from sinks.client import get_client
from tests.integration.conftest import WorkerProcess, wait_for_worker
from tests.integration.test_pipeline import produce, read_dlq

pytestmark = pytest.mark.integration

WINDOW_MS = 10_000  # conftest's window (10 s) and lateness (5 s), idle close 3 s
LIVE = [f"live-{i:02d}" for i in range(12)]
LAGGING = "lagging-clock"
GATEWAY = "gateway-7"
REPLAYED = "replayed-2014"
NOW_MS = (int(time.time() * 1000) // WINDOW_MS) * WINDOW_MS - 120_000  # two minutes ago
YEAR_2100_MS = 4_102_444_800_000
CSV_ROWS = 1_000
CSV_START_MS = 1_388_534_400_000  # 2014-01-01T00:00:00Z, one row every 5 minutes


def reading(device: str, ts: int, value: float, seq: int) -> dict[str, Any]:
    return {
        "reading_id": f"{device}@{ts}/{seq}",
        "device_id": device,
        "device_type": "MACHINE",
        "sensor_id": f"{device}/t",
        "capability": "TEMPERATURE",
        "value": value,
        "unit": "degC",
        "timestamp": ts,
        "sequence": seq,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }


def live_second(second: int) -> list[dict[str, Any]]:
    """One second of the live fleet, plus the device whose clock is ten minutes behind."""
    ts = NOW_MS + second * 1000
    out = [reading(d, ts, 20.0 + i + (second % 7) * 0.1, second) for i, d in enumerate(LIVE)]
    out.append(reading(LAGGING, ts - 600_000, 5.0 + (second % 5), second))
    return out


def write_csv(path: Path) -> list[tuple[int, float]]:
    rows = [
        (CSV_START_MS + i * 300_000, round(50 + 10 * math.sin(i / 12), 3)) for i in range(CSV_ROWS)
    ]
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value"])
        for ts, value in rows:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts / 1000))
            out.writerow([stamp, value])
    return rows


def expected_windows(points: list[tuple[int, float]]) -> dict[int, tuple[int, float, float, float]]:
    by_window: dict[int, list[float]] = defaultdict(list)
    for ts, value in points:
        by_window[ts - ts % WINDOW_MS].append(value)
    return {w: (len(v), statistics.fmean(v), min(v), max(v)) for w, v in by_window.items()}


def stored_windows(settings: Settings, device: str) -> dict[int, tuple[int, float, float, float]]:
    rows = (
        get_client(settings)
        .query(
            "SELECT toUnixTimestamp64Milli(window_start), count, mean, min, max "
            "FROM aggregates FINAL WHERE device_id = {d:String}",
            parameters={"d": device},
        )
        .result_rows
    )
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}


def assert_windows_exact(settings: Settings, device: str, points: list[tuple[int, float]]) -> None:
    want = expected_windows(points)
    got = stored_windows(settings, device)
    assert set(got) == set(want), f"{device}: windows {sorted(set(want) ^ set(got))[:5]} differ"
    for window, (count, mean, lo, hi) in want.items():
        g = got[window]
        assert (g[0], g[2], g[3]) == (count, lo, hi), (device, window, g)
        assert g[1] == pytest.approx(mean), (device, window)


class Day:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sent: dict[str, list[tuple[int, float]]] = defaultdict(list)
        self.csv_rows: list[tuple[int, float]] = []
        self.dlq: list[tuple[bytes, dict[str, str]]] = []

    def send(self, records: list[dict[str, Any]], codec: AvroCodec) -> None:
        produce(self.settings, records, codec)
        for r in records:
            self.sent[r["device_id"]].append((r["timestamp"], r["value"]))


@pytest.fixture(scope="module")
def day(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Day]:
    settings, codec = services, AvroCodec()
    logs = tmp_path_factory.mktemp("event-time")
    result = Day(settings)
    worker = WorkerProcess(settings, logs / "worker.log")
    client = get_client(settings)
    try:
        for second in range(30):  # the fleet has been running for a while
            result.send(live_second(second), codec)
        wait_for_worker(
            lambda: client.command("SELECT count() FROM readings") >= 30 * 13, 90, "live", worker
        )
        # Clock faults: twelve devices a reading each in 2100, one at the largest long.
        faults = [reading(f"faulty-{i}", YEAR_2100_MS, 1.0, 0) for i in range(12)]
        faults.append(reading("faulty-max", 2**63 - 1, 1.0, 0))
        produce(settings, faults, codec)
        for second in range(30, 60):  # the live fleet goes on
            result.send(live_second(second), codec)
        # The gateway sent 0..30 s, then its uplink dropped for longer than the idle close.
        result.send([reading(GATEWAY, NOW_MS + s * 1000, float(s), s) for s in range(31)], codec)
        time.sleep(settings.idle_close_seconds + 3)
        # It comes back and flushes its buffer in order (31..90 s), some of it for a window
        # that was closed while it was away.
        buffered = [reading(GATEWAY, NOW_MS + s * 1000, float(s), s) for s in range(31, 91)]
        result.send(buffered, codec)
        # An operator replays a 2014 export with the user's own command.
        csv_path = logs / "export-2014.csv"
        result.csv_rows = write_csv(csv_path)
        subprocess.run(
            [sys.executable, "-m", "envirostream", "replay", str(csv_path), "--device", REPLAYED,
             "--capability", "TEMPERATURE", "--speed", "max"],
            env=settings_environ(settings), cwd=REPO_ROOT, check=True, timeout=120,
        )  # fmt: skip
        for second in range(60, 70):
            result.send(live_second(second), codec)
        total = sum(len(v) for v in result.sent.values()) + CSV_ROWS
        wait_for_worker(
            lambda: client.command("SELECT count() FROM readings FINAL") >= total,
            120,
            f"{total} readings",
            worker,
        )
        # Windows close on their devices' own clocks or after their idle timeout.
        gateway_corrected = (
            "SELECT max(count) FROM aggregates FINAL WHERE device_id = 'gateway-7' AND "
            f"toUnixTimestamp64Milli(window_start) = {NOW_MS + 30_000}"
        )
        wait_for_worker(lambda: client.command(gateway_corrected) == 10, 60, "correction", worker)
        time.sleep(settings.idle_close_seconds + 3)
        assert worker.alive(), "the worker exited"
        result.dlq = read_dlq(settings, expected=len(faults))
    finally:
        worker.stop()
    yield result


def test_every_valid_reading_is_stored_once(day: Day) -> None:
    client = get_client(day.settings)
    for device, points in day.sent.items():
        stored = client.command(
            "SELECT count() FROM readings FINAL WHERE device_id = {d:String}",
            parameters={"d": device},
        )
        assert stored == len(points), device
    replayed = client.command(f"SELECT count() FROM readings FINAL WHERE device_id = '{REPLAYED}'")
    assert replayed == CSV_ROWS


def test_a_replay_of_2014_beside_the_live_fleet_has_exact_aggregates(day: Day) -> None:
    assert_windows_exact(day.settings, REPLAYED, day.csv_rows)


def test_a_lagging_clock_and_a_gateway_flush_lose_nothing(day: Day) -> None:
    assert_windows_exact(day.settings, LAGGING, day.sent[LAGGING])
    # The window the gateway's flush reopened was emitted with one reading, then corrected.
    assert_windows_exact(day.settings, GATEWAY, day.sent[GATEWAY])


def test_the_live_fleet_is_untouched_by_the_clock_faults(day: Day) -> None:
    for device in LIVE:
        assert_windows_exact(day.settings, device, day.sent[device])


def test_clock_faults_are_quarantined_with_their_reason(day: Day) -> None:
    reasons = sorted(h["error.reason"] for _, h in day.dlq)
    assert reasons == ["future_timestamp"] * 13
    client = get_client(day.settings)
    assert client.command("SELECT count() FROM readings WHERE device_id LIKE 'faulty%'") == 0
