"""``envirostream replay FILE.csv``: a recorded CSV log sent as one device's readings."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay", help="stream a recorded CSV log as one device's readings"
    )
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--device", required=True, help="device id of the readings")
    p.add_argument("--capability", required=True, help="capability name (generic if unknown)")
    p.add_argument("--timestamp-column", default="timestamp")
    p.add_argument("--value-column", default="value")
    p.add_argument("--speed", default="max", help="X times the recorded pace, or max")
    p.add_argument("--broker-timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from prometheus_client import CollectorRegistry

    from producers.replay import (
        BadRow,
        CsvSource,
        ReplayError,
        parse_speed,
        replay,
        resolve_capability,
    )
    from schemas import AvroCodec
    from streams.run import serve_metrics
    from topics import READINGS
    from topics.producer import ProducerMetrics, RecordProducer, wait_for_broker

    if not args.device.strip():
        msg = "--device must not be empty"
        raise EnviroStreamError(msg)
    try:
        capability = resolve_capability(args.capability)
        speed = parse_speed(args.speed)
        source = CsvSource(Path(args.file), args.timestamp_column, args.value_column)
    except ReplayError as exc:
        raise EnviroStreamError(str(exc)) from exc
    wait_for_broker(settings.bootstrap_servers, timeout=args.broker_timeout)
    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry, "replay")
    serve_metrics(settings.replay_metrics_port, registry, "ENVIROSTREAM_REPLAY_METRICS_PORT")

    def bad(row: BadRow) -> None:
        print(f"{args.file}:{row.line}: skipped: {row.reason}", file=sys.stderr)

    report = replay(
        source,
        args.device,
        capability,
        RecordProducer(settings.bootstrap_servers),
        AvroCodec(registry_url=settings.schema_registry_url),
        READINGS,
        speed=speed,
        tenant_id="default",
        on_bad_row=bad,
        metrics=metrics,
    )
    print(
        f"replayed {args.file}: sent {report.sent} readings, skipped {report.skipped} bad rows; "
        f"delivered {report.delivered}, undelivered {report.undelivered}"
        + (f"; last error: {report.last_error}" if report.last_error else "")
    )
    return 0 if report.undelivered == 0 and report.delivered == report.sent else 1
