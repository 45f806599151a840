"""The topic admin against a real broker: creates what is missing, reports drift, keeps data."""

from __future__ import annotations

import dataclasses
import uuid

from confluent_kafka import Consumer, Producer

from core.settings import Settings
from topics import DLQ, READINGS, TopicAdmin, topic_specs


def test_create_missing_then_nothing_and_no_drift(services: Settings) -> None:
    admin = TopicAdmin(services.bootstrap_servers)
    specs = topic_specs(services)
    created = admin.create_missing(specs)
    assert sorted(created) == sorted(s.name for s in specs)
    assert admin.create_missing(specs) == []
    assert admin.drift(specs) == []
    states = {s.name: s for s in admin.describe(specs)}
    assert states[READINGS].partitions == services.topic_partitions
    assert states[READINGS].retention_ms == round(services.readings_retention_hours * 3_600_000)


def test_drift_is_reported_and_data_is_kept(services: Settings) -> None:
    admin = TopicAdmin(services.bootstrap_servers)
    specs = topic_specs(services)
    admin.create_missing(specs)
    producer = Producer({"bootstrap.servers": services.bootstrap_servers})
    producer.produce(DLQ, value=b"keep me")
    assert producer.flush(30) == 0

    wanted = [
        dataclasses.replace(
            s, partitions=s.partitions + 2, config={**s.config, "retention.ms": "1000"}
        )
        if s.name == DLQ
        else s
        for s in specs
    ]
    drift = {(d.topic, d.setting): (d.expected, d.actual) for d in admin.drift(wanted)}
    assert drift[(DLQ, "partitions")] == ("3", "1")
    assert drift[(DLQ, "retention.ms")][0] == "1000"
    assert admin.create_missing(wanted) == []  # drift is reported, never "fixed"

    consumer = Consumer(
        {
            "bootstrap.servers": services.bootstrap_servers,
            "group.id": f"t-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([DLQ])
    values = []
    for _ in range(20):
        msg = consumer.poll(1.0)
        if msg is not None and not msg.error():
            values.append(msg.value())
            break
    consumer.close()
    assert values == [b"keep me"]
