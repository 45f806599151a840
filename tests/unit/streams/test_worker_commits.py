"""The worker's commit rule, with in-memory stand-ins for ClickHouse and the producer.

Property checked: a committed offset never passes a reading whose window is still open or
whose row is not yet stored, and outputs are flushed before any commit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.types import TP
from prometheus_client import CollectorRegistry

from envirostream.metrics import PipelineMetrics
from envirostream.settings import load_settings
from schemas import AvroCodec
from streams.app import PipelineWorker
from streams.readings import InputRecord

TOPIC = "telemetry.readings"


class MemoryWriter:
    def __init__(self) -> None:
        self.rows: dict[str, list[list[Any]]] = {}

    def write(self, table: str, columns: list[list[Any]]) -> int:
        self.rows.setdefault(table, []).extend(zip(*columns, strict=True))  # type: ignore[arg-type]
        return len(columns[0])


class MemoryProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.flushes = 0
        self.failed = 0
        self.last_error = None

    def send_batch(self, topic: str, keys: Any, values: Any, **_: Any) -> None:
        self.sent.extend((topic, v) for v in values)

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


def make_worker(**overrides: Any) -> tuple[PipelineWorker, MemoryWriter, MemoryProducer, list]:
    values: dict[str, Any] = {
        "window_seconds": 10,
        "allowed_lateness_seconds": 0,
        "sink_batch_rows": 1_000_000,
        "sink_batch_seconds": 600,
        "commit_interval_seconds": 0.001,
    }
    settings = load_settings({}, **(values | overrides))
    commits: list[dict[TP, int]] = []

    async def commit(offsets: dict[TP, int]) -> bool:
        commits.append(dict(offsets))
        return True

    writer, producer = MemoryWriter(), MemoryProducer()
    worker = PipelineWorker(
        settings,
        AvroCodec(),
        writer,  # type: ignore[arg-type]
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
