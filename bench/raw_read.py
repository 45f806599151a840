"""The raw read path of the benches: fill the readings topic, and read it back as fast as a
plain consumer can (confluent-kafka or aiokafka), decoding each batch with a given decoder.

Shared by ``bench throughput`` (the raw ceiling) and ``bench decode`` (the alternatives).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer
from aiokafka import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, TopicPartition

from core.settings import Settings
from producers.fleet import Fleet
from producers.models import KINDS
from producers.simulator import SimulationConfig, run_simulation
from schemas import AvroCodec
from schemas.measure import fastavro_decode
from schemas.reading_columns import ColumnReader
from topics import READINGS, topic_specs
from topics.kafka_config import aiokafka_kwargs, librdkafka_config
from topics.producer import RecordProducer

__all__ = ["CLIENTS", "DECODERS", "Decode", "fill_readings", "read_rate"]

NAME = "UniversalSensorReading"
Decode = Callable[[list[bytes]], int]  # a batch of values -> how many readings it decoded


def _codec(codec: AvroCodec) -> Decode:
    return lambda values: sum(1 for o in codec.decode_batch(NAME, values) if isinstance(o, dict))


def _columns(codec: AvroCodec) -> Decode:
    reader = ColumnReader(codec)

    def decode(values: list[bytes]) -> int:
        cols = reader.read(values)
        return len(cols) - sum(1 for i in cols.others if cols.error(i) is not None)

    return decode


def _fastavro(codec: AvroCodec) -> Decode:
    return lambda values: len(fastavro_decode(codec, values))


DECODERS: dict[str, Callable[[AvroCodec], Decode]] = {
    "none": lambda codec: len,  # fetch only
    "fastavro": _fastavro,  # fastavro's schemaless_reader per record (before the codec's own)
    "codec": _codec,  # AvroCodec.decode_batch: the specialised reading decoder, a dict each
    "columns": _columns,  # ColumnReader: the batch into columns at once (the worker's)
}


def fill_readings(settings: Settings, readings: int) -> tuple[int, float]:
    """Fill ``telemetry.readings`` with about ``readings`` simulated readings of 1,000
    devices of every kind, as fast as the broker takes them: (delivered, seconds)."""
    devices, kinds = 1000, KINDS
    per_tick = Fleet(devices, kinds, seed=1).readings_per_tick
    config = SimulationConfig(
        devices=devices,
        kinds=kinds,
        speedup=0,
        start_ms=1_767_225_600_000,
        duration_s=max(1, readings // per_tick),
        seed=1,
    )
    t0 = time.perf_counter()
    report = run_simulation(config, RecordProducer(settings), AvroCodec(), READINGS)
    return report.delivered, time.perf_counter() - t0


def _confluent(settings: Settings, total: int, decode: Decode) -> tuple[float, int]:
    consumer = Consumer(
        {
            **librdkafka_config(settings),
            "group.id": f"bench-raw-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
        }
    )
    parts = consumer.list_topics(READINGS, timeout=10).topics[READINGS].partitions
    consumer.assign([TopicPartition(READINGS, p, 0) for p in parts])
    seen = decoded = 0
    t0 = time.perf_counter()
    while seen < total:
        msgs = consumer.consume(num_messages=settings.worker_batch_size, timeout=1.0)
        seen += len(msgs)
        decoded += decode([m.value() or b"" for m in msgs])
    elapsed = time.perf_counter() - t0
    consumer.close()
    return elapsed, decoded


async def _aiokafka(settings: Settings, total: int, decode: Decode) -> tuple[float, int]:
    """The worker's client and fetch settings (streams/consumer.py), partitions assigned."""
    consumer = AIOKafkaConsumer(
        **aiokafka_kwargs(settings),
        enable_auto_commit=False,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        count = next(s.partitions for s in topic_specs(settings) if s.name == READINGS)
        tps = [AioTopicPartition(READINGS, p) for p in range(count)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = decoded = 0
        t0 = time.perf_counter()
        while seen < total:
            fetched = await consumer.getmany(
                timeout_ms=1000, max_records=settings.worker_batch_size
            )
            values = [m.value or b"" for msgs in fetched.values() for m in msgs]
            seen += len(values)
            decoded += decode(values)
        elapsed = time.perf_counter() - t0
    finally:
        await consumer.stop()
    return elapsed, decoded


CLIENTS = ("aiokafka", "confluent")


def read_rate(settings: Settings, total: int, client: str, decoder: str) -> float:
    """Readings/s of reading all ``total`` readings back with ``client`` and ``decoder``
    (batches of ``worker_batch_size``, as the worker takes them)."""
    decode = DECODERS[decoder](AvroCodec())
    if client == "confluent":
        elapsed, decoded = _confluent(settings, total, decode)
    elif client == "aiokafka":
        elapsed, decoded = asyncio.run(_aiokafka(settings, total, decode))
    else:
        msg = f"unknown client {client!r}; known: {', '.join(CLIENTS)}"
        raise ValueError(msg)
    return decoded / elapsed
