"""``envirostream replay FILE.csv``: a recorded CSV log sent as one device's readings.

Single-column mode (``--capability``, ``--value-column``): one series. Wide mode
(``--columns`` or ``--columns-file``): one time column and many sensor columns, each mapped
to a capability of the device (see :mod:`producers.wide_csv`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.errors import EnviroStreamError
from core.settings import Settings
from envirostream.commands._simulation import add_tenant_arg

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "replay", help="stream a recorded CSV log as one device's readings"
    )
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--device", required=True, help="device id of the readings")
    p.add_argument(
        "--capability", default=None, help="single-column mode: capability (generic if unknown)"
    )
    p.add_argument("--timestamp-column", default="timestamp")
    p.add_argument("--value-column", default="value", help="single-column mode: value column")
    p.add_argument(
        "--columns",
        default=None,
        help="wide mode: 'column=CAPABILITY,...' (each mapped column is one series)",
    )
    p.add_argument(
        "--columns-file",
        default=None,
        help="wide mode: a mapping file, one column=CAPABILITY per line, # comments",
    )
    p.add_argument("--separator", default=",", help="field separator (default ',')")
    p.add_argument(
        "--device-type", default="UNKNOWN", help="device type of the readings (e.g. MACHINE)"
    )
    p.add_argument("--speed", default="max", help="X times the recorded pace, or max")
    p.add_argument("--broker-timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    add_tenant_arg(p, "the replayed readings")
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
    from producers.wide_csv import (
        WideCsvSource,
        parse_column_map,
        read_columns_file,
        replay_wide,
        resolve_device_type,
    )
    from schemas import AvroCodec, SchemaRegistryClient
    from streams.run import serve_metrics
    from topics import READINGS
    from topics.producer import ProducerMetrics, RecordProducer, wait_for_broker

    if not args.device.strip():
        msg = "--device must not be empty"
        raise EnviroStreamError(msg)
    wide = args.columns is not None or args.columns_file is not None
    if wide and args.capability is not None:
        msg = "--capability is for one value column; with --columns/--columns-file leave it out"
        raise EnviroStreamError(msg)
    if args.columns is not None and args.columns_file is not None:
        msg = "give --columns or --columns-file, not both"
        raise EnviroStreamError(msg)
    if not wide and args.capability is None:
        msg = "give --capability (one value column) or --columns/--columns-file (wide CSV)"
        raise EnviroStreamError(msg)
    try:
        speed = parse_speed(args.speed)
        device_type = resolve_device_type(args.device_type)
        if wide:
            columns = (
                parse_column_map(args.columns)
                if args.columns is not None
                else read_columns_file(args.columns_file)
            )
            wide_source = WideCsvSource(
                Path(args.file), args.timestamp_column, columns, separator=args.separator
            )
        else:
            capability = resolve_capability(args.capability)
            if len(args.separator) != 1:
                msg = f"--separator must be one character, got {args.separator!r}"
                raise ReplayError(msg)
            source = CsvSource(
                Path(args.file), args.timestamp_column, args.value_column, args.separator
            )
    except ReplayError as exc:
        raise EnviroStreamError(str(exc)) from exc
    wait_for_broker(settings, timeout=args.broker_timeout)
    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry, "replay")
    serve_metrics(
        settings.replay_metrics_port,
        registry,
        "ENVIROSTREAM_REPLAY_METRICS_PORT",
        settings.metrics_host,
    )

    def bad(row: BadRow) -> None:
        print(f"{args.file}:{row.line}: skipped: {row.reason}", file=sys.stderr)

    producer = RecordProducer(settings)
    codec = AvroCodec(registry=SchemaRegistryClient.from_settings(settings))
    if wide:
        report = replay_wide(
            wide_source,
            args.device,
            producer,
            codec,
            READINGS,
            device_type=device_type,
            speed=speed,
            tenant_id=args.tenant,
            on_bad_row=bad,
            metrics=metrics,
        )
    else:
        report = replay(
            source,
            args.device,
            capability,
            producer,
            codec,
            READINGS,
            speed=speed,
            tenant_id=args.tenant,
            on_bad_row=bad,
            metrics=metrics,
            device_type=device_type,
        )
    print(
        f"replayed {args.file}: sent {report.sent} readings, skipped {report.skipped} bad rows; "
        f"delivered {report.delivered}, undelivered {report.undelivered}"
        + (f"; last error: {report.last_error}" if report.last_error else "")
    )
    return 0 if report.undelivered == 0 and report.delivered == report.sent else 1
