"""``envirostream simulate``: produce a simulated fleet's readings to Kafka."""

from __future__ import annotations

import argparse
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
    p.add_argument("--broker-timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import CollectorRegistry

    from producers.simulator import run_simulation
    from schemas import AvroCodec, SchemaRegistryClient
    from streams.run import serve_metrics
    from topics import READINGS
    from topics.producer import ProducerMetrics, RecordProducer, wait_for_broker

    config = simulation_config(args)
    wait_for_broker(settings, timeout=args.broker_timeout)
    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry, "simulator")
    serve_metrics(
        settings.simulator_metrics_port,
        registry,
        "ENVIROSTREAM_SIMULATOR_METRICS_PORT",
        settings.metrics_host,
    )
    producer = RecordProducer(settings)
    stop = threading.Event()
    try:
        report = run_simulation(
            config,
            producer,
            AvroCodec(registry=SchemaRegistryClient.from_settings(settings)),
            READINGS,
            stop=stop,
            metrics=metrics,
        )
    except KeyboardInterrupt:
        stop.set()
        return 130
    print(
        f"sent {report.produced} readings in {report.ticks} ticks "
        f"({report.wall_seconds:.1f}s wall); delivered {report.delivered}, "
        f"undelivered {report.undelivered}"
        + (f"; last error: {report.last_error}" if report.last_error else "")
    )
    return 0 if report.undelivered == 0 and report.delivered == report.produced else 1
