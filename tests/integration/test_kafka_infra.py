"""The local Kafka broker from Maven jars: idempotent start/stop, a real round trip, ports.

Uses its own data dir and free ports, and the repository's cache dir so the jars fetched
once are reused.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from core.errors import ConfigurationError, ServiceUnavailableError
from core.settings import Settings, load_settings
from infra.kafka import kafka_status, start_kafka, stop_kafka, wait_for_kafka
from infra.prereqs import check_prerequisites
from infra.processes import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp / "data",
        "cache_dir": REPO / ".cache",
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "kafka_heap": "384m",
        "topic_partitions": 2,
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[Settings]:
    settings = _settings(tmp_path)
    yield settings
    stop_kafka(settings)  # never leave a broker behind, whatever failed


def _round_trip(bootstrap: str, count: int) -> list[tuple[bytes, bytes]]:
    topic = f"infra-test-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": bootstrap})
    sent = [(f"dev-{i}".encode(), f"reading-{i}".encode()) for i in range(count)]
    for key, value in sent:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"infra-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    received: list[tuple[bytes, bytes]] = []
    try:
        for _ in range(60):
            for msg in consumer.consume(num_messages=count, timeout=1.0):
                assert msg.error() is None, msg.error()
                got_key, got_value = msg.key(), msg.value()
                assert isinstance(got_key, bytes) and isinstance(got_value, bytes)
                received.append((got_key, got_value))
            if len(received) >= count:
                break
    finally:
        consumer.close()
    return received


def test_prerequisites_are_met() -> None:
    assert check_prerequisites() == []


def test_start_round_trip_status_stop(settings: Settings) -> None:
    pid = start_kafka(settings)
    assert isinstance(pid, int)
    assert start_kafka(settings) == pid  # idempotent: the running broker, not a second one
    assert (settings.data_dir / "kafka" / "logs" / "meta.properties").is_file()

    received = _round_trip(settings.bootstrap_servers, 5)
    assert sorted(received) == sorted(
        (f"dev-{i}".encode(), f"reading-{i}".encode()) for i in range(5)
    )

    status = kafka_status(settings)
    assert status["running"] is True and status["answering"] is True
    assert status["pid"] == pid and status["bootstrap"] == settings.bootstrap_servers
    wait_for_kafka(settings.bootstrap_servers, timeout=5)

    assert stop_kafka(settings) is True
    assert stop_kafka(settings) is False
    status = kafka_status(settings)
    assert status["running"] is False and status["pid"] is None
    assert status["answering"] is False


def test_restart_keeps_the_formatted_storage(settings: Settings) -> None:
    start_kafka(settings)
    meta = settings.data_dir / "kafka" / "logs" / "meta.properties"
    formatted = meta.read_text()
    assert stop_kafka(settings) is True
    second = start_kafka(settings)  # formats nothing: the same cluster id answers
    assert isinstance(second, int) and meta.read_text() == formatted
    assert kafka_status(settings)["answering"] is True


def test_taken_port_is_refused_naming_the_setting(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        settings = _settings(tmp_path, kafka_port=squatter.getsockname()[1])
        with pytest.raises(ConfigurationError) as err:
            start_kafka(settings)
    assert err.value.setting == "ENVIROSTREAM_KAFKA_PORT"
    assert "ENVIROSTREAM_KAFKA_PORT" in str(err.value) and "already in use" in str(err.value)
    assert kafka_status(settings)["running"] is False


def test_wait_for_kafka_gives_up_with_a_hint() -> None:
    with pytest.raises(ServiceUnavailableError) as err:
        wait_for_kafka(f"127.0.0.1:{free_port()}", timeout=1.5)
    assert "ENVIROSTREAM_KAFKA_BOOTSTRAP" in str(err.value)
    assert "envirostream infra up" in str(err.value)
