"""The worker's commit rule, with in-memory stand-ins for ClickHouse and the producer.

Property checked: a committed offset never passes a reading whose window is still open or
whose row is not yet stored, and outputs are flushed before any commit.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from faust.types import TP
from prometheus_client import CollectorRegistry

from core.metrics import PipelineMetrics
from core.settings import load_settings
from schemas import AvroCodec
from sinks.base import BatchingSink, SinkBatch
from sinks.ddl import TABLES
from streams.readings import InputRecord
from streams.worker import PipelineWorker

TOPIC = "telemetry.readings"


class MemorySink(BatchingSink):
    """The ClickHouse tables' columns, rows kept in lists."""

    def __init__(self) -> None:
        super().__init__({t.name: t.column_names for t in TABLES.values()})
        self.rows: dict[str, list[tuple[Any, ...]]] = {}

    def write(self, batch: SinkBatch) -> None:
        self.rows.setdefault(batch.table, []).extend(zip(*batch.columns, strict=True))


class MemoryProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.partitions: list[tuple[str, int]] = []  # explicit partitions asked for
        self.flushes = 0
        self.failed = 0
        self.last_error = None

    def send_batch(
        self, topic: str, keys: Any, values: Any, partitions: Any = None, **_: Any
    ) -> None:
        self.sent.extend((topic, v) for v in values)
        self.partitions.extend((topic, p) for p in partitions or ())

    def flush(self, timeout: float = 0) -> int:
        self.flushes += 1
        return 0


def reading(codec: AvroCodec, device: str, ts: int, value: float = 1.0) -> bytes:
    return codec.encode(
        "UniversalSensorReading",
        {
            "reading_id": f"{device}@{ts}",
            "device_id": device,
            "device_type": "MACHINE",
            "sensor_id": f"{device}/v",
            "capability": "VIBRATION",
            "value": value,
            "unit": "mm/s",
            "timestamp": ts,
            "sequence": 0,
            "quality": "GOOD",
            "tenant_id": "default",
            "attributes": {},
            "label": None,
        },
    )


def make_worker(**overrides: Any) -> tuple[PipelineWorker, MemorySink, MemoryProducer, list]:
    values: dict[str, Any] = {
        "window_seconds": 10,
        "allowed_lateness_seconds": 0,
        "sink_batch_rows": 1_000_000,
        "sink_batch_seconds": 600,
        "commit_interval_seconds": 0.001,
        "event_time_floor": "1970-01-01",  # the readings here are stamped near the epoch
        # each asyncio.run is a loop of its own: writes end within the call (the writes in
        # the background: tests/unit/streams/test_worker_pipelined_writes.py)
        "sink_pipelined": False,
    }
    settings = load_settings({}, **(values | overrides))
    commits: list[dict[TP, int]] = []

    async def commit(offsets: dict[TP, int]) -> bool:
        commits.append(dict(offsets))
        return True

    writer, producer = MemorySink(), MemoryProducer()
    worker = PipelineWorker(
        settings,
        AvroCodec(),
        writer,
        producer,  # type: ignore[arg-type]
        PipelineMetrics(CollectorRegistry()),
        commit=commit,
    )
    return worker, writer, producer, commits


def test_commit_stops_at_rows_not_yet_stored() -> None:
    worker, _, _, commits = make_worker()
    codec = AvroCodec()
    batch = [InputRecord(TOPIC, 0, i, b"d", reading(codec, "d", i * 1000)) for i in range(5)]
    asyncio.run(worker.on_readings(batch))
    # Rows are buffered (not due) and the window [0, 10 s) is open: offset 0 is the limit.
    assert commits
    assert max(c[TP(TOPIC, 0)] for c in commits) == 0


def test_commit_advances_only_past_closed_and_stored_windows() -> None:
    worker, writer, producer, commits = make_worker(sink_batch_rows=1)
    codec = AvroCodec()
    first = [InputRecord(TOPIC, 0, i, b"d", reading(codec, "d", i * 1000)) for i in range(12)]
    asyncio.run(worker.on_readings(first))
    # Readings 0..9 made window [0,10 s), closed by reading 10 (lateness 0); 10 and 11 are in
    # the open window [10 s, 20 s), so the commit may reach offset 10 but not beyond.
    assert commits and commits[-1][TP(TOPIC, 0)] == 10
    assert len(writer.rows["readings"]) == 12
    assert [t for t, _ in producer.sent] == ["telemetry.aggregates"]
    assert producer.flushes >= 1


def test_bad_records_are_dead_lettered_and_do_not_block_commits() -> None:
    worker, _, producer, commits = make_worker(sink_batch_rows=1)
    codec = AvroCodec()
    batch = [
        InputRecord(TOPIC, 1, 0, b"x", b"\x00garbage"),
        InputRecord(TOPIC, 1, 1, b"d", reading(codec, "d", 1000, float("nan"))),
    ]
    asyncio.run(worker.on_readings(batch))
    assert [t for t, _ in producer.sent] == ["telemetry.dlq", "telemetry.dlq"]
    assert commits[-1][TP(TOPIC, 1)] == 2


ALERTS = "telemetry.alerts"
ANOMALIES = "telemetry.anomalies"


def alert(key: str, state: str = "FIRING", severity: str = "CRITICAL", version: int = 1) -> dict:
    return {
        "alert_id": f"{key}@0",
        "alert_key": key,
        "device_id": key.split("/")[0],
        "device_type": "MACHINE",
        "capability": "VIBRATION",
        "rule": "vibration_high",
        "severity": severity,
        "state": state,
        "first_seen": 1000,
        "last_seen": 2000,
        "resolved_at": 3000 if state == "RESOLVED" else None,
        "version": version,
        "attributes": {"site": "s1"},
    }


def score(device: str, ts: int) -> dict:
    return {
        "ts": ts,
        "device_id": device,
        "detector": "zscore",
        "score": 1.0,
        "threshold": 3.0,
        "value": 2.0,
        "is_anomaly": False,
    }


def test_alert_and_anomaly_sinks_commit_only_after_their_rows_are_stored() -> None:
    worker, writer, producer, _ = make_worker()
    codec = AvroCodec()
    alerts = [alert("m1/v"), alert("m2/v", severity="WARNING")]
    batch = [
        InputRecord(ALERTS, 0, 5 + i, a["alert_key"].encode(), codec.encode("Alert", a))
        for i, a in enumerate(alerts)
    ]
    scores = [InputRecord(ANOMALIES, 2, i, b"m1", codec.encode("AnomalyScore", score("m1", i)))
              for i in range(3)]  # fmt: skip
    asyncio.run(worker.on_sink_records(ALERTS, batch))
    asyncio.run(worker.on_sink_records(ANOMALIES, scores))
    asyncio.run(worker.commit())  # the interval-bound commit may have been skipped
    # Buffered, not stored: the commit holds at the first row of each partition.
    assert worker.committed == {(ALERTS, 0): 5, (ANOMALIES, 2): 0}
    assert "alerts" not in writer.rows
    value = worker.metrics.registry.get_sample_value
    assert value("envirostream_alerts_firing", {"severity": "critical"}) == 1
    assert value("envirostream_alerts_firing", {"severity": "warning"}) == 1

    asyncio.run(worker.flush_and_commit(force=True))
    assert len(writer.rows["alerts"]) == 2 and len(writer.rows["anomalies"]) == 3
    assert worker.committed == {(ALERTS, 0): 7, (ANOMALIES, 2): 3}

    # A RESOLVED version clears the gauge; a record that is no Alert is dead-lettered and
    # its offset passed.
    resolved = alert("m1/v", "RESOLVED", version=2)
    more = [
        InputRecord(ALERTS, 0, 7, b"m1/v", codec.encode("Alert", resolved)),
        InputRecord(ALERTS, 0, 8, b"x", b"\x00garbage"),
    ]
    asyncio.run(worker.on_sink_records(ALERTS, more))
    asyncio.run(worker.flush_and_commit(force=True))
    assert value("envirostream_alerts_firing", {"severity": "critical"}) == 0
    assert [t for t, _ in producer.sent] == ["telemetry.dlq"]
    assert worker.committed == {(ALERTS, 0): 9, (ANOMALIES, 2): 3}
    assert writer.rows["alerts"][-1][8] == "RESOLVED"  # the `state` column


def test_unreachable_alertmanager_holds_up_neither_rows_nor_commits() -> None:
    from infra.processes import free_port
    from sinks.alertmanager import AlertmanagerForwarder

    worker, writer, _, commits = make_worker(sink_batch_rows=1)
    forwarder = AlertmanagerForwarder(
        f"http://127.0.0.1:{free_port()}", worker.metrics, retries=2, backoff_seconds=0.4
    )
    worker.alerting.forwarder = forwarder
    codec = AvroCodec()
    record = InputRecord(ALERTS, 1, 0, b"m1/v", codec.encode("Alert", alert("m1/v")))

    async def run() -> float:
        started = time.monotonic()
        await worker.on_sink_records(ALERTS, [record])
        took = time.monotonic() - started
        assert worker.alerting.forwarding is not None
        await worker.alerting.forwarding  # two retries: at least 1.2 s of backoff, off the loop
        return took

    took = asyncio.run(run())
    assert took < 0.5
    assert len(writer.rows["alerts"]) == 1 and commits[-1] == {TP(ALERTS, 1): 1}
    value = worker.metrics.registry.get_sample_value
    assert value("envirostream_alertmanager_retries_total") == 2
    assert value("envirostream_alertmanager_alerts_forwarded_total", {"outcome": "failed"}) == 1
    assert list(forwarder.pending) == ["m1/v"]  # kept for the next attempt

    # The partition moves to another worker: its alerts are that worker's to post now.
    worker.forget([TP(ALERTS, 1)])
    assert forwarder.pending == {} and forwarder.firing == {}
    assert value("envirostream_alerts_firing", {"severity": "critical"}) == 0
