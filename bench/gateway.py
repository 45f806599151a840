"""``envirostream bench gateway``: the MQTT gateway against a raw Kafka producer, one run.

On private services (Kafka, Mosquitto; no store, no worker): the same simulated readings
(``--devices`` devices for ``--seconds`` ticks at 1 Hz) go to ``telemetry.readings``
1. straight from a Kafka producer (``topics/producer.py``, what the simulator uses);
2. through Mosquitto and one ``envirostream gateway mqtt`` process, as single-object Avro,
   one reading per QoS 1 message (what ``simulate --via mqtt`` sends);
3. the same way as JSON, one message per device and tick holding all its readings.
A gateway's rate is counted from the first publish until Kafka holds every reading
(the topic's end offsets), so it covers broker, gateway and the Kafka acknowledgements.
Prints readings/s and messages/s per path; the last line is JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from core.settings import Settings, settings_environ
from infra.harness import REPO_ROOT, private_services, private_settings
from infra.mosquitto import simulator_url, start_mosquitto, stop_mosquitto
from infra.processes import free_port
from producers.encoding import TickEncoder
from producers.mqtt_publisher import MqttPublisher
from producers.simulator import SimulationConfig, build_records
from schemas import AvroCodec
from topics import READINGS, TopicAdmin, topic_specs
from topics.kafka_config import librdkafka_config
from topics.producer import RecordProducer

__all__ = ["run_gateway_bench"]

T0 = 1_767_225_600_000
_JSON_FIELDS = ("reading_id", "device_type", "sensor_id", "capability", "value", "unit")


def _readings_in_kafka(settings: Settings) -> int:
    consumer = Consumer({**librdkafka_config(settings), "group.id": "bench"})
    try:
        parts = consumer.list_topics(READINGS, timeout=10).topics[READINGS].partitions
        return sum(
            consumer.get_watermark_offsets(TopicPartition(READINGS, p), timeout=10)[1]
            for p in parts
        )
    finally:
        consumer.close()


def _wait_for(settings: Settings, total: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while _readings_in_kafka(settings) < total:
        if time.monotonic() > deadline:
            msg = f"Kafka holds {_readings_in_kafka(settings)} of {total} readings after {timeout}s"
            raise RuntimeError(msg)
        time.sleep(0.1)


def _fleet_ticks(devices: int, seconds: int) -> list[tuple[list[bytes], list[bytes], list[dict]]]:
    """Per tick: keys, single-object Avro values and the reading dicts."""
    config = SimulationConfig(devices=devices, kinds=("battery", "grid", "machine", "vehicle"))
    fleet = config.fleet()
    encoder = TickEncoder(fleet, AvroCodec())
    out = []
    for seq in range(seconds):
        tick = fleet.tick(T0 + seq * 1000)
        keys, values = encoder.encode(tick, seq)
        out.append((keys, values, build_records(tick, seq, "default")))
    return out


def _json_messages(records: list[dict]) -> list[tuple[bytes, bytes]]:
    """One JSON message per device: (device id, payload) with all its readings of a tick."""
    by_device: dict[str, list[dict]] = defaultdict(list)
    for r in records:
        item = {k: r[k] for k in _JSON_FIELDS}
        item["timestamp"], item["sequence"] = r["timestamp"], r["sequence"]
        by_device[r["device_id"]].append(item)
    return [(d.encode(), json.dumps({"readings": rs}).encode()) for d, rs in by_device.items()]


def _through_gateway(
    settings: Settings, messages: list[tuple[list[bytes], list[bytes]]], readings: int, log: Path
) -> dict[str, float]:
    """Publish ``messages`` (per tick: keys, payloads); time until Kafka has them all."""
    before = _readings_in_kafka(settings)
    gateway = subprocess.Popen(
        [sys.executable, "-m", "envirostream", "gateway", "mqtt", "--client-id", "bench-gw"],
        env=settings_environ(settings),
        cwd=REPO_ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "gateway: " not in log.read_text():
            if gateway.poll() is not None or time.monotonic() > deadline:
                msg = f"the gateway did not start:\n{log.read_text()}"
                raise RuntimeError(msg)
            time.sleep(0.2)
        publisher = MqttPublisher(
            simulator_url(settings).get_secret_value(), f"bench-pub-{os.getpid()}"
        )
        count = sum(len(keys) for keys, _ in messages)
        started = time.monotonic()
        cpu0 = os.times()
        for keys, payloads in messages:
            publisher.send_batch(READINGS, keys, payloads)
        if publisher.flush(300):
            msg = f"the broker did not acknowledge every message: {publisher.last_error}"
            raise RuntimeError(msg)
        published_s = time.monotonic() - started
        publisher_cpu = (os.times().user - cpu0.user) + (os.times().system - cpu0.system)
        publisher.close()
        _wait_for(settings, before + readings)
        elapsed = time.monotonic() - started
    finally:
        gateway.terminate()
        gateway.wait(30)
    return {
        "messages": count,
        "readings": readings,
        "seconds": round(elapsed, 2),
        "messages_per_s": round(count / elapsed),
        "readings_per_s": round(readings / elapsed),
        "publisher_messages_per_s": round(count / published_s),
        "publisher_cpu_s": round(publisher_cpu, 2),
    }


def run_gateway_bench(base: Settings, devices: int = 100, seconds: int = 60) -> dict[str, Any]:
    settings = private_settings(
        base, "envirostream-bench-gateway-", mqtt_port=free_port(), gateway_metrics_port=0
    )
    ticks = _fleet_ticks(devices, seconds)
    readings = sum(len(values) for _, values, _ in ticks)
    print(
        f"bench gateway: {devices} devices x {seconds} ticks = {readings:,} readings, "
        f"under {settings.data_dir}"
    )
    figures: dict[str, Any] = {"devices": devices, "ticks": seconds, "readings": readings}
    with private_services(settings, store=False):
        TopicAdmin(settings).create_missing(topic_specs(settings))
        start_mosquitto(settings)
        try:
            producer = RecordProducer(settings)
            started = time.monotonic()
            for keys, values, _ in ticks:
                producer.send_batch(READINGS, keys, values)
            if producer.flush(120):
                msg = f"Kafka did not acknowledge every reading: {producer.last_error}"
                raise RuntimeError(msg)
            _wait_for(settings, readings)
            kafka_s = time.monotonic() - started
            del producer  # closed now, not when Kafka stops under it
            figures["kafka_producer"] = {
                "seconds": round(kafka_s, 2),
                "readings_per_s": round(readings / kafka_s),
            }
            print(f"  Kafka producer:         {readings / kafka_s:>10,.0f} readings/s")
            log = settings.data_dir / "gateway.log"
            avro = [(keys, values) for keys, values, _ in ticks]
            figures["gateway_avro"] = _through_gateway(settings, avro, readings, log)
            batches = [_json_messages(records) for _, _, records in ticks]
            json_msgs = [([k for k, _ in b], [p for _, p in b]) for b in batches]
            figures["gateway_json_batch"] = _through_gateway(settings, json_msgs, readings, log)
            for name in ("gateway_avro", "gateway_json_batch"):
                f = figures[name]
                print(
                    f"  {name:<23} {f['readings_per_s']:>10,} readings/s "
                    f"{f['messages_per_s']:>8,} messages/s (one gateway process; the publisher "
                    f"alone {f['publisher_messages_per_s']:,} messages/s)"
                )
        finally:
            stop_mosquitto(settings)
    print(json.dumps(figures))
    return figures
