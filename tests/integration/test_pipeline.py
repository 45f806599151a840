"""End to end against real services: simulator → Kafka → worker → ClickHouse.

One seeded run per module, with a SIGKILL of the worker in the middle, late and
out-of-order readings and malformed records mixed in. The expected aggregates are
computed here, independently, from the same seeded fleet (not read back from the system).
"""

from __future__ import annotations

import math
import statistics
import struct
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import Consumer

from core.settings import Settings
from producers.fleet import Fleet
from producers.models import KINDS
from producers.simulator import SimulationConfig, build_records, run_simulation
from schemas import AvroCodec
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import WorkerProcess, wait_for_worker
from topics import DLQ, READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
DEVICES = 200
SECONDS = 60  # six 10-second windows
WINDOW_MS = 10_000
LATE_DEVICE = "late-dev"
# (offset from START in seconds, value): sent in this order after the fleet.
LATE_SEQUENCE = [(62, 1.0), (61, 2.0), (69, 3.0), (64, 4.0), (73, 5.0), (68, 6.0), (90, 7.0),
                 (65, 99.0)]  # fmt: skip
TOO_LATE_VALUE = 99.0  # 65 s arrives when the device's watermark is 85 s: window emitted


def late_records() -> list[dict[str, Any]]:
    out = []
    for i, (sec, value) in enumerate(LATE_SEQUENCE):
        ts = START_MS + sec * 1000
        out.append(
            {
                "reading_id": f"{LATE_DEVICE}/temperature@{ts}/{i}",
                "device_id": LATE_DEVICE,
                "device_type": "MACHINE",
                "sensor_id": f"{LATE_DEVICE}/temperature",
                "capability": "TEMPERATURE",
                "value": value,
                "unit": "degC",
                "timestamp": ts,
                "sequence": i,
                "quality": "GOOD",
                "tenant_id": "default",
                "attributes": {},
                "label": None,
            }
        )
    return out


def bad_records(codec: AvroCodec) -> dict[str, bytes]:
    """One malformed record per kind of bad input, keyed by the reason we expect."""
    good = late_records()[0] | {"device_id": "bad-dev", "reading_id": "bad-1"}
    body = codec.encode("UniversalSensorReading", good)
    return {
        "random_bytes": bytes(range(7, 250, 3)),
        "truncated": body[: len(body) // 2],
        "unknown_fingerprint": b"\xc3\x01" + struct.pack("<Q", 0xDEADBEEF) + body[10:],
        "missing_field": codec.encode(
            "UniversalSensorReading", good | {"device_id": "", "reading_id": "bad-2"}
        ),
        "nan": codec.encode(
            "UniversalSensorReading", good | {"value": math.nan, "reading_id": "bad-3"}
        ),
    }


EXPECTED_DLQ_REASON = {
    "random_bytes": "not_avro",
    "truncated": "corrupt_body",
    "unknown_fingerprint": "unknown_fingerprint",
    "missing_field": "missing_field",
    "nan": "non_finite_value",
}


@dataclass
class Run:
    settings: Settings
    fleet_records: list[dict[str, Any]]
    bad: dict[str, bytes]
    dlq: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    produced: int = 0


def produce(settings: Settings, records: list[dict[str, Any]], codec: AvroCodec) -> None:
    producer = RecordProducer(settings.bootstrap_servers)
    values = codec.encode_batch("UniversalSensorReading", records)
    producer.send_batch(READINGS, [r["device_id"].encode() for r in records], values)
    assert producer.flush(60) == 0


def read_dlq(
    settings: Settings, expected: int, timeout: float = 30
) -> list[tuple[bytes, dict[str, str]]]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"test-dlq-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([DLQ])
    out: list[tuple[bytes, dict[str, str]]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None and len(out) >= expected:
                break  # replays after the kill may repeat a letter: read until quiet
            if msg is None or msg.error():
                continue
            headers = {k: v.decode() for k, v in (msg.headers() or [])}
            out.append((msg.value(), headers))
    finally:
        consumer.close()
    return out


@pytest.fixture(scope="module")
def run(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Run:
    settings = services
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    codec = AvroCodec()
    config = SimulationConfig(
        devices=DEVICES, kinds=KINDS, rate_hz=1, speedup=0, start_ms=START_MS,
        duration_s=SECONDS / 2, seed=42,
    )  # fmt: skip
    first = run_simulation(config, RecordProducer(settings.bootstrap_servers), codec, READINGS)
    assert first.undelivered == 0
    bad = bad_records(codec)
    producer = RecordProducer(settings.bootstrap_servers)
    producer.send_batch(READINGS, [b"bad-dev"] * len(bad), list(bad.values()))
    assert producer.flush(30) == 0

    log_dir = tmp_path_factory.mktemp("logs")
    client = get_client(settings)
    ClickHouseSink(client, settings).setup()  # idempotent; the worker does it too
    worker = WorkerProcess(settings, log_dir / "worker-1.log")
    try:
        wait_for_worker(
            lambda: client.command("SELECT count() FROM readings") >= 5_000,
            120,
            "the first worker to store readings",
            worker,
        )
    finally:
        worker.kill()  # SIGKILL in the middle of the run: no clean shutdown, no final commit

    # The second half continues the seeded fleet exactly where the first half stopped.
    fleet_records = regenerate_fleet(SECONDS)
    produce(settings, fleet_records[first.produced :], codec)
    produce(settings, late_records(), codec)

    worker = WorkerProcess(settings, log_dir / "worker-2.log")
    expected_windows = len({(r["device_id"], r["capability"], r["timestamp"] // WINDOW_MS)
                            for r in fleet_records}) + 3  # fmt: skip
    try:
        wait_for_worker(
            lambda: client.command("SELECT count() FROM aggregates FINAL") >= expected_windows,
            180,
            f"{expected_windows} aggregates",
            worker,
        )
        late_window = (
            "SELECT max(count) FROM aggregates FINAL "
            f"WHERE device_id = '{LATE_DEVICE}' AND toUnixTimestamp64Milli(window_start) = "
            f"{START_MS + 60_000}"
        )
        wait_for_worker(
            lambda: client.command(late_window) == 6, 60, "the late window's correction", worker
        )
        time.sleep(2)  # anything beyond the expected rows would show up now
    finally:
        worker.stop()
    result = Run(settings, fleet_records, bad)
    result.dlq = read_dlq(settings, expected=len(bad))
    return result


def regenerate_fleet(seconds: int) -> list[dict[str, Any]]:
    """The readings of the seeded fleet, built again here for the expectations."""
    fleet = Fleet(DEVICES, KINDS, seed=42)
    out: list[dict[str, Any]] = []
    for seq in range(seconds):
        out.extend(build_records(fleet.tick(START_MS + seq * 1000), seq, "default"))
    return out


def expected_aggregates(
    records: list[dict[str, Any]],
) -> dict[tuple[str, str, int], list[tuple[int, float]]]:
    groups: dict[tuple[str, str, int], list[tuple[int, float]]] = defaultdict(list)
    for r in records:
        ts = r["timestamp"]
        groups[(r["device_id"], r["capability"], ts - ts % WINDOW_MS)].append((ts, r["value"]))
    return groups


def stored_aggregates(settings: Settings) -> dict[tuple[str, str, int], tuple]:
    client = get_client(settings)
    rows = client.query(
        "SELECT device_id, capability, toUnixTimestamp64Milli(window_start), "
        "toUnixTimestamp64Milli(window_end), window_size, count, mean, min, max, std, "
        "first, last FROM aggregates FINAL"
    ).result_rows
    return {(r[0], r[1], r[2]): tuple(r[3:]) for r in rows}


def test_every_aggregate_equals_statistics_computed_independently(run: Run) -> None:
    expected = expected_aggregates(run.fleet_records)
    stored = stored_aggregates(run.settings)
    fleet_rows = {k: v for k, v in stored.items() if k[0] != LATE_DEVICE}
    assert set(fleet_rows) == set(expected)
    for key, series in expected.items():
        end, size, count, mean, lo, hi, std, first, last = fleet_rows[key]
        # Stable sort by event time: readings sharing a timestamp (a vehicle's four tyre
        # sensors report one capability) keep their production order, which is arrival order.
        values = [v for _, v in sorted(series, key=lambda tv: tv[0])]
        assert end == key[2] + WINDOW_MS
        assert size == "10s"
        assert count == len(values), key
        assert mean == pytest.approx(statistics.fmean(values), rel=1e-9, abs=1e-9)
        assert std == pytest.approx(statistics.pstdev(values), rel=1e-6, abs=1e-9)
        assert (lo, hi) == (min(values), max(values))
        # Several sensors of one capability (cells, tyres) share event times: on a tie at
        # the first or last time, any of the tied values is a correct first/last.
        first_ts, last_ts = min(t for t, _ in series), max(t for t, _ in series)
        assert first in {v for t, v in series if t == first_ts}, key
        assert last in {v for t, v in series if t == last_ts}, key


def test_row_count_is_devices_times_capabilities_times_windows(run: Run) -> None:
    fleet = Fleet(DEVICES, KINDS, seed=42)
    channels = sum(len(fleet.channels_of(d)) for d in fleet.device_ids)
    windows = SECONDS * 1000 // WINDOW_MS
    client = get_client(run.settings)
    stored = client.command(
        f"SELECT count() FROM aggregates FINAL WHERE device_id != '{LATE_DEVICE}'"
    )
    assert stored == channels * windows


def test_readings_are_stored_once_each_despite_the_kill(run: Run) -> None:
    client = get_client(run.settings)
    (unique, rows), *_ = client.query(
        "SELECT uniqExact(reading_id), count() FROM readings FINAL "
        f"WHERE device_id != '{LATE_DEVICE}'"
    ).result_rows
    assert unique == rows == len(run.fleet_records)


def test_late_and_out_of_order_readings_within_lateness_land_in_their_window(run: Run) -> None:
    stored = stored_aggregates(run.settings)
    late = {k[2] - START_MS: v for k, v in stored.items() if k[0] == LATE_DEVICE}
    # [60 s, 70 s) got 62, 61, 69, 64 and 68 (68 arrived after 73: within 5 s lateness), and
    # 65 s after the window was emitted: the correction recomputed it from the stored readings.
    assert set(late) == {60_000, 70_000, 90_000}
    count, mean, lo, hi = late[60_000][2:6]
    assert (count, lo, hi) == (6, 1.0, TOO_LATE_VALUE)
    assert mean == pytest.approx(statistics.fmean([1.0, 2.0, 3.0, 4.0, 6.0, TOO_LATE_VALUE]))
    assert late[60_000][7:9] == (2.0, 3.0)  # first/last by event time: 61 s and 69 s
    assert late[70_000][2] == 1 and late[90_000][2] == 1


def test_reading_after_its_window_was_emitted_is_stored_not_dead_lettered(run: Run) -> None:
    assert not [h for _, h in run.dlq if h.get("error.reason") == "late"], run.dlq
    client = get_client(run.settings)
    stored = f"SELECT count() FROM readings FINAL WHERE value = {TOO_LATE_VALUE}"
    assert client.command(stored) == 1
    # The window was emitted with 5 readings, then corrected; FINAL keeps the complete one.
    versions = client.query(
        f"SELECT count FROM aggregates WHERE device_id = '{LATE_DEVICE}' "
        f"AND toUnixTimestamp64Milli(window_start) = {START_MS + 60_000}"
    ).result_rows
    assert {row[0] for row in versions} <= {5, 6} and (6,) in versions


def test_bad_input_reaches_the_dlq_with_a_readable_reason(run: Run) -> None:
    by_value = {value: headers for value, headers in run.dlq}
    for name, payload in run.bad.items():
        assert payload in by_value, f"{name} is not in the DLQ"
        headers = by_value[payload]
        assert headers["error.reason"] == EXPECTED_DLQ_REASON[name], name
        assert len(headers["error.message"]) > 10
        assert headers["source.topic"] == READINGS
        assert int(headers["source.offset"]) >= 0
    client = get_client(run.settings)
    assert client.command("SELECT count() FROM readings WHERE device_id = 'bad-dev'") == 0
