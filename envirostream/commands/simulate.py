"""``envirostream simulate``: a simulated fleet's readings, to Kafka or through MQTT."""

from __future__ import annotations

import argparse
import os
import threading
from typing import Any

from core.settings import Settings
from envirostream.commands._simulation import add_simulation_args, simulation_config

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "simulate", help="produce a simulated fleet's readings"
    )
    add_simulation_args(p)
    p.add_argument(
        "--via",
        choices=["kafka", "mqtt"],
        default="kafka",
        help="kafka: produce to telemetry.readings (default); mqtt: publish each reading to "
        "its device's MQTT topic, for `gateway mqtt` to forward (docs/gateway.md)",
    )
    p.add_argument("--broker-timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    return p


def _sender(args: argparse.Namespace, settings: Settings) -> Any:
    """The transport: a Kafka producer, or an MQTT publisher as the simulator's user."""
    if args.via == "mqtt":
        from infra.mosquitto import simulator_url
        from producers.mqtt_publisher import MqttPublisher, publish_template

        return MqttPublisher(
            simulator_url(settings).get_secret_value(),
            f"envirostream-simulator-{os.getpid()}",
            template=publish_template(settings.mqtt_topic),
            connect_timeout=args.broker_timeout,
        )
    from topics.producer import RecordProducer, wait_for_broker

    wait_for_broker(settings, timeout=args.broker_timeout)
    return RecordProducer(settings)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import CollectorRegistry

    from producers.simulator import run_simulation
    from schemas import AvroCodec, SchemaRegistryClient
    from streams.run import serve_metrics
    from topics import READINGS
    from topics.producer import ProducerMetrics

    config = simulation_config(args)
    sender = _sender(args, settings)
    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry, "simulator")
    serve_metrics(
        settings.simulator_metrics_port,
        registry,
        "ENVIROSTREAM_SIMULATOR_METRICS_PORT",
        settings.metrics_host,
    )
    # Over MQTT the payload is single-object Avro (the gateway needs no registry for it).
    codec = (
        AvroCodec()
        if args.via == "mqtt"
        else AvroCodec(registry=SchemaRegistryClient.from_settings(settings))
    )
    stop = threading.Event()
    try:
        report = run_simulation(config, sender, codec, READINGS, stop=stop, metrics=metrics)
    except KeyboardInterrupt:
        stop.set()
        return 130
    finally:
        if args.via == "mqtt":
            sender.close()
    print(
        f"sent {report.produced} readings in {report.ticks} ticks "
        f"({report.wall_seconds:.1f}s wall) via {args.via}; delivered {report.delivered}, "
        f"undelivered {report.undelivered}"
        + (f"; last error: {report.last_error}" if report.last_error else "")
    )
    return 0 if report.undelivered == 0 and report.delivered == report.produced else 1
