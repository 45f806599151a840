"""Simulator and replayer against a real broker, read back by an independent consumer.

The consumer decodes with fastavro straight from the ``.avsc`` file (not through the
project's codec) and the expectations are regenerated from the seeded fleet.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
from confluent_kafka import Consumer

from core.settings import Settings
from infra.processes import free_port
from producers.models import KINDS
from producers.simulator import SimulationConfig, build_records, run_simulation
from schemas import AvroCodec
from tests.integration.conftest import REPO, service_env
from topics import READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer

START_MS = 1_767_225_600_000


def _raw_schema() -> Any:
    """The .avsc with timestamps read as plain epoch ms (fastavro would make datetimes)."""
    schema = json.loads((REPO / "schemas" / "UniversalSensorReading.avsc").read_text())
    for f in schema["fields"]:
        if f["name"] == "timestamp":
            f["type"] = "long"
    return fastavro.parse_schema(schema)


SCHEMA = _raw_schema()
NAB = REPO / "tests" / "data" / "nab_machine_temperature_excerpt.csv"


def read_back(
    settings: Settings, want: Callable[[dict[str, Any]], bool], expected: int
) -> list[dict]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"check-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([READINGS])
    out: list[dict] = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(5000, timeout=1.0):
                if msg.error():
                    continue
                raw = msg.value()
                assert raw is not None
                assert raw[:2] == b"\xc3\x01"  # Avro single-object encoding
                rec = fastavro.schemaless_reader(io.BytesIO(raw[10:]), SCHEMA)
                assert isinstance(rec, dict)
                if want(rec):
                    assert msg.key() == rec["device_id"].encode()
                    out.append(rec)
    finally:
        consumer.close()
    return out


def cli(
    settings: Settings, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    base = service_env(settings) | {"ENVIROSTREAM_SIMULATOR_METRICS_PORT": str(free_port())}
    return subprocess.run(
        [sys.executable, "-m", "envirostream", *args],
        env=base | (env or {}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_accelerated_fleet_arrives_complete_with_ground_truth(services: Settings) -> None:
    TopicAdmin(services.bootstrap_servers).create_missing(topic_specs(services))
    config = SimulationConfig(
        devices=12,
        kinds=KINDS,
        rate_hz=1 / 60,  # one reading per minute of event time: 2 hours in 120 ticks
        speedup=0,
        start_ms=START_MS,
        duration_s=2 * 3600,
        seed=11,
        failure_rate=0.5,
    )
    report = run_simulation(
        config, RecordProducer(services.bootstrap_servers), AvroCodec(), READINGS
    )
    assert report.undelivered == 0 and report.delivered == report.produced > 0
    fleet = config.fleet()
    expected = {}
    for seq in range(report.ticks):
        for r in build_records(fleet.tick(START_MS + seq * 60_000), seq, "default"):
            expected[r["reading_id"]] = r
    assert len(expected) == report.produced
    got = read_back(
        services,
        lambda r: r["timestamp"] >= START_MS and r["device_id"][:3] != "nab",
        len(expected),
    )
    assert len(got) == len(expected)
    for rec in got:
        want = expected[rec["reading_id"]]
        assert rec["value"] == want["value"] and rec["label"] == want["label"]
        assert rec["timestamp"] == want["timestamp"] and rec["sequence"] == want["sequence"]
    phases = {r["label"]["phase"] for r in got if r["label"]}
    assert {"NORMAL", "PRECURSOR", "FAILURE"} <= phases
    assert any(r["label"] is None for r in got)


def test_replay_cli_sends_the_file_skips_bad_rows_and_repeats_the_same_ids(
    services: Settings, tmp_path: Path
) -> None:
    lines = NAB.read_text().splitlines()
    lines[3] = "2013-12-02 21:30:00,oops"  # line 4
    lines[7] = "yesterday,70.0"  # line 8
    f = tmp_path / "nab.csv"
    f.write_text("\n".join(lines) + "\n")
    runs = [
        cli(services, "replay", str(f), "--device", "nab-1", "--capability", "temperature")
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "sent 38 readings, skipped 2 bad rows" in run.stdout
        assert f"{f}:4: skipped: unparseable value 'oops'" in run.stderr
        assert f"{f}:8: skipped: unparseable timestamp 'yesterday'" in run.stderr
    got = read_back(services, lambda r: r["device_id"] == "nab-1", 76)
    ids = [r["reading_id"] for r in got]
    assert len(ids) == 76 and len(set(ids)) == 38  # the replay repeated the very same ids
    first = min(got, key=lambda r: r["timestamp"])
    assert first["reading_id"] == "nab-1/temperature@1386018900000"
    assert first["capability"] == "TEMPERATURE" and first["value"] == 73.96732207


def test_simulate_cli_runs_a_scenario_in_accelerated_time(services: Settings) -> None:
    run = cli(
        services,
        "simulate", "--devices", "8", "--kinds", "machine", "--scenario", "bearing_wear",
        "--failure-rate", "1", "--rate", "0.01", "--speedup", "0", "--duration", "30000",
        "--start", "2027-01-01T00:00:00Z", "--seed", "3",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    # 8 pump+motor units x 7 sensors x 300 ticks of 100 s
    assert "sent 16800 readings in 300 ticks" in run.stdout and "undelivered 0" in run.stdout


def test_bad_options_fail_before_producing(services: Settings, tmp_path: Path) -> None:
    cases = [
        (("simulate", "--scenario", "meteor"), "--scenario"),
        (("simulate", "--kinds", "toaster"), "--kinds"),
        (("simulate", "--rate", "0"), "--rate"),
        (("replay", str(tmp_path / "none.csv"), "--device", "d", "--capability", "voc"), "FILE"),
        (("replay", str(NAB), "--device", "d", "--capability", "warp"), "--capability"),
        (("replay", str(NAB), "--device", "d", "--capability", "voc", "--speed", "0"), "--speed"),
    ]
    for args, option in cases:
        run = cli(services, *args)
        assert run.returncode != 0 and option in run.stderr, (args, run.stderr)


def test_broker_down_at_start_is_a_clear_error_after_a_bounded_wait(services: Settings) -> None:
    env = {"ENVIROSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}"}
    t0 = time.monotonic()
    run = cli(
        services,
        "replay", str(NAB), "--device", "d", "--capability", "voc", "--broker-timeout", "3",
        env=env,
    )  # fmt: skip
    assert time.monotonic() - t0 < 60
    assert run.returncode == 1 and "Kafka" in run.stderr, run.stderr
    run = cli(services, "simulate", "--devices", "4", "--broker-timeout", "3", env=env)
    assert run.returncode == 1 and "no answer within 3s" in run.stderr, run.stderr


def test_replay_paces_rows_by_their_recorded_times(services: Settings, tmp_path: Path) -> None:
    f = tmp_path / "five.csv"
    f.write_text("\n".join(NAB.read_text().splitlines()[:6]) + "\n")  # 5 rows, 5 min apart
    t0 = time.monotonic()
    run = cli(
        services,
        "replay",
        str(f),
        "--device",
        "paced-1",
        "--capability",
        "GENERIC",
        "--speed",
        "600",
    )
    elapsed = time.monotonic() - t0
    assert run.returncode == 0, run.stderr
    assert "sent 5 readings, skipped 0 bad rows" in run.stdout
    assert elapsed >= 2.0  # 4 gaps of 300 s at 600x = 2 s of pacing
    got = read_back(services, lambda r: r["device_id"] == "paced-1", 5)
    assert {r["capability"] for r in got} == {"GENERIC"} and len(got) == 5


def test_simulate_and_replay_write_the_tenant_given(services: Settings, tmp_path: Path) -> None:
    start = "2031-01-01T00:00:00Z"
    run = cli(
        services,
        "simulate", "--devices", "2", "--kinds", "machine", "--rate", "0.1", "--speedup", "0",
        "--duration", "100", "--start", start, "--tenant", "utility-a",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    sent = int(re.search(r"sent (\d+) readings", run.stdout).group(1))  # type: ignore[union-attr]
    start_ms = 1_924_992_000_000
    got = read_back(services, lambda r: start_ms <= r["timestamp"] < start_ms + 200_000, sent)
    assert len(got) == sent and {r["tenant_id"] for r in got} == {"utility-a"}
    f = tmp_path / "one.csv"
    f.write_text("timestamp,value\n2031-02-01 00:00:00,1.5\n2031-02-01 00:01:00,2.5\n")
    replayed = cli(services, "replay", str(f), "--device", "tenant-dev", "--capability",
                   "temperature", "--tenant", "utility-b")  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr
    got = read_back(services, lambda r: r["device_id"] == "tenant-dev", 2)
    assert [r["tenant_id"] for r in got] == ["utility-b", "utility-b"]
