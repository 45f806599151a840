"""A user's bad day, against real services: the store and the broker go away, data does not.

Each test has its own broker and store (they are stopped here), its own worker process,
and a producer that keeps sending while the service is away. The expectations (every
reading once, exact aggregates) are computed here from what was sent, not read back from
the system.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings
from infra.harness import start_services, stop_services
from infra.kafka import start_kafka, stop_kafka
from infra.store import store_status
from schemas import AvroCodec
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import WorkerProcess, make_settings, wait_for_worker
from tests.integration.test_pipeline import read_dlq
from topics import READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer

CODEC = AvroCodec()
WINDOW_MS = 10_000


def reading(device: str, ts: int, value: float, seq: int) -> dict[str, Any]:
    return {
        "reading_id": f"{device}/temperature@{ts}",
        "device_id": device,
        "device_type": "MACHINE",
        "sensor_id": f"{device}/temperature",
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


def send(producer: RecordProducer, records: list[dict[str, Any]]) -> None:
    values = CODEC.encode_batch("UniversalSensorReading", records)
    producer.send_batch(READINGS, [r["device_id"].encode() for r in records], values)


@pytest.fixture
def own_services(tmp_path: Path) -> Iterator[Settings]:
    """A broker and a store of this test only (it stops them), a worker log at INFO."""
    settings = make_settings(
        tmp_path,
        log_level="INFO",
        sink_timeout_seconds=3,
        sink_retry_initial_seconds=0.5,
        sink_retry_max_seconds=2,
    )
    try:
        start_services(settings)
    except Exception as exc:
        stop_services(settings)
        pytest.fail(f"could not start the real services: {exc}")
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    ClickHouseSink(get_client(settings), settings).setup()  # the worker does it too
    yield settings
    stop_services(settings)


def metric(settings: Settings, name: str) -> float:
    """The sum of the worker's samples of ``name`` on /metrics."""
    url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    return sum(
        float(m.group(1)) for m in re.finditer(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    )


def expected_windows(records: list[dict[str, Any]]) -> dict[tuple[str, int], tuple[int, float]]:
    """(device, window start) -> (count, sum of values), computed from what was sent."""
    out: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in records:
        out[(r["device_id"], r["timestamp"] - r["timestamp"] % WINDOW_MS)].append(r["value"])
    return {k: (len(v), sum(v)) for k, v in out.items()}


def stored_windows(settings: Settings) -> dict[tuple[str, int], tuple[int, float]]:
    rows = (
        get_client(settings)
        .query(
            "SELECT device_id, toUnixTimestamp64Milli(window_start), count, mean "
            "FROM aggregates FINAL"
        )
        .result_rows
    )
    return {(r[0], r[1]): (r[2], r[3] * r[2]) for r in rows}


# -- insert limits ------------------------------------------------------------------------
def test_ten_years_of_monthly_readings_are_stored_in_full(own_services: Settings) -> None:
    """120 months (2010-2019) of one device: more partitions than one insert may touch."""
    settings = own_services
    months = [
        int(datetime(2010 + i // 12, i % 12 + 1, 1, tzinfo=UTC).timestamp() * 1000)
        for i in range(120)
    ]
    records = [reading("replayed", ts, float(i), i) for i, ts in enumerate(months)]
    producer = RecordProducer(settings.bootstrap_servers)
    send(producer, records)
    assert producer.flush(30) == 0
    worker = WorkerProcess(settings, settings.data_dir / "worker.log")
    client = get_client(settings)
    try:
        wait_for_worker(
            lambda: client.command("SELECT count() FROM aggregates FINAL") >= 120,
            120,
            "120 monthly aggregates",
            worker,
        )
        assert worker.alive()
        assert metric(settings, "envirostream_sink_errors_total") == 0
    finally:
        worker.stop()
    assert client.command("SELECT count() FROM readings FINAL") == 120
    stored = client.query("SELECT toYYYYMM(ts), value FROM readings FINAL ORDER BY ts").result_rows
    assert stored == [(2010_00 + (i // 12) * 100 + i % 12 + 1, float(i)) for i in range(120)]
    assert client.command("SELECT uniqExact(_partition_id) FROM readings") == 120
    assert stored_windows(settings) == {
        ("replayed", ts - ts % WINDOW_MS): (1, float(i)) for i, ts in enumerate(months)
    }


# -- a stalled store ------------------------------------------------------------------------
class Ticker(threading.Thread):
    """Sends one reading per device every ``interval`` s of wall time, one second of event
    time apart, for ``ticks`` ticks; keeps what it sent."""

    def __init__(self, settings: Settings, devices: int, ticks: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.producer = RecordProducer(settings.bootstrap_servers)
        self.devices, self.ticks, self.interval = devices, ticks, interval
        self.sent: list[dict[str, Any]] = []
        self.start_ms = 1_767_225_600_000  # 2026-01-01T00:00:00Z

    def run(self) -> None:
        for t in range(self.ticks):
            ts = self.start_ms + t * 1000
            batch = [reading(f"dev-{d}", ts, float(t * 10 + d), t) for d in range(self.devices)]
            send(self.producer, batch)
            self.sent.extend(batch)
            time.sleep(self.interval)
        self.undelivered = self.producer.flush(180)


def test_a_stalled_store_makes_the_worker_wait_and_lose_nothing(own_services: Settings) -> None:
    settings = own_services
    store_pid = store_status(settings)["pid"]
    assert store_pid is not None
    worker = WorkerProcess(settings, settings.data_dir / "worker.log")
    client = get_client(settings)
    ticker = Ticker(settings, devices=5, ticks=160, interval=0.25)  # ~40 s
    try:
        worker.wait_healthy(120)
        ticker.start()
        wait_for_worker(
            lambda: client.command("SELECT count() FROM readings") >= 20,
            60,
            "the first readings stored",
            worker,
        )
        os.kill(store_pid, signal.SIGSTOP)  # the store hangs: requests time out
        try:
            time.sleep(20)
            assert worker.alive(), worker.tail()
            assert metric(settings, "envirostream_sink_up") == 0
        finally:
            os.kill(store_pid, signal.SIGCONT)
        ticker.join(120)
        assert ticker.undelivered == 0
        want = expected_windows(ticker.sent)
        wait_for_worker(
            lambda: client.command("SELECT count() FROM aggregates FINAL") >= len(want),
            120,
            f"{len(want)} aggregates",
            worker,
        )
        assert worker.alive()
        assert metric(settings, "envirostream_sink_up") == 1
        assert metric(settings, "envirostream_sink_retries_total") >= 1
    finally:
        worker.stop()
    ids = client.query("SELECT reading_id FROM readings FINAL").result_rows
    assert sorted(i for (i,) in ids) == sorted(r["reading_id"] for r in ticker.sent)
    got = stored_windows(settings)
    assert {k: n for k, (n, _) in got.items()} == {k: n for k, (n, _) in want.items()}
    assert all(got[k][1] == pytest.approx(total) for k, (_, total) in want.items())
    log = worker.log.read_text(errors="replace")
    print(*(ln for ln in log.splitlines() if "store" in ln or "input " in ln), sep="\n")
    assert len(re.findall(r"the store is unreachable", log)) == 1, log[-3000:]
    assert len(re.findall(r"the store is back after [\d.]+ s and \d+ retries", log)) == 1


# -- a broker outage longer than the idle close ------------------------------------------
def test_a_broker_outage_loses_no_reading(own_services: Settings) -> None:
    settings = own_services.model_copy(update={"idle_close_seconds": 5.0})
    worker = WorkerProcess(settings, settings.data_dir / "worker.log")
    client = get_client(settings)
    ticker = Ticker(settings, devices=5, ticks=160, interval=0.25)  # ~40 s, buffered meanwhile
    try:
        worker.wait_healthy(120)
        ticker.start()
        wait_for_worker(
            lambda: client.command("SELECT count() FROM readings") >= 20,
            60,
            "the first readings stored",
            worker,
        )
        log_before = len(worker.log.read_text(errors="replace").splitlines())
        assert stop_kafka(settings)
        time.sleep(15)
        assert worker.alive(), worker.tail()
        start_kafka(settings)
        ticker.join(180)
        assert ticker.undelivered == 0
        sent = {r["reading_id"] for r in ticker.sent}
        # Quiet: nothing new stored for 10 s after the producer delivered everything.
        last = [-1, time.monotonic()]

        def settled() -> bool:
            n = client.command("SELECT count() FROM readings FINAL")
            if n != last[0]:
                last[:] = [n, time.monotonic()]
            return n >= len(sent) or time.monotonic() - last[1] > 10

        wait_for_worker(settled, 180, f"{len(sent)} readings stored", worker)
        assert worker.alive()
        log = worker.log.read_text(errors="replace").splitlines()[log_before:]
    finally:
        worker.stop()
    stored_ids = {i for (i,) in client.query("SELECT reading_id FROM readings FINAL").result_rows}
    assert client.command("SELECT count() FROM readings") >= len(stored_ids)
    letters = read_dlq(settings, expected=1, timeout=15)  # waits 15 s when empty
    late_ids = {
        CODEC.decode(v, "UniversalSensorReading")["reading_id"]
        for v, h in letters
        if h.get("error.reason") == "late"
    }
    print(f"broker outage: {len(sent)} sent, {len(stored_ids)} stored, {len(late_ids)} late in DLQ")
    # Every reading is stored once, also those that arrived after their device's windows
    # were idle-closed during the outage (they are late: stored, and their windows corrected).
    assert stored_ids == sent
    assert not late_ids
    print(f"broker outage: {len(log)} worker log lines during and after the outage:")
    print(*log, sep="\n")
    assert len(log) < 60, "\n".join(log[-80:])  # readable: no line per connection attempt
    assert sum("the Kafka broker is unreachable" in line for line in log) == 1
    assert sum("the Kafka broker is back after" in line for line in log) == 1
