"""The ``envirostream`` command line (stable: scripts and users depend on it)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import threading
from collections.abc import Sequence

from core.errors import ConfigurationError, EnviroStreamError
from core.settings import Settings, load_settings
from producers.scenarios import SCENARIOS
from producers.simulator import SimulationConfig

__all__ = ["KNOWN_COMMANDS", "build_parser", "main"]

KNOWN_COMMANDS = (
    "up",
    "worker",
    "simulate",
    "replay",
    "query",
    "infra",
    "topics",
    "status",
    "bench",
    "alerts",
)
KINDS = ("grid", "battery", "vehicle", "machine")


def _kinds(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip().lower() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        given = ", ".join(unknown) or "(none)"
        msg = f"unknown device kind(s) {given}; choose from {', '.join(KINDS)}"
        raise argparse.ArgumentTypeError(msg)
    return kinds


def _start(text: str) -> int:
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        msg = f"expected an ISO time such as 2026-01-01T00:00:00Z, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def _add_simulation_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--devices", type=int, default=100, help="number of devices (default 100)")
    p.add_argument("--kinds", type=_kinds, default=KINDS, help="comma list of " + ",".join(KINDS))
    p.add_argument("--rate", type=float, default=1.0, help="readings per sensor per second")
    p.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="event seconds per wall second (1 = real time, 0 = as fast as possible)",
    )
    p.add_argument("--start", type=_start, default=None, help="first event time (ISO, UTC)")
    p.add_argument("--duration", type=float, default=None, help="event-time seconds to simulate")
    p.add_argument("--seed", type=int, default=0, help="same seed = same readings, byte for byte")
    p.add_argument(
        "--failure-rate",
        type=float,
        default=None,
        help="share of devices that fail (0-1; default 0, or 0.1 with --scenario)",
    )
    p.add_argument(
        "--scenario",
        default=None,
        help="only this failure scenario (see docs/scenarios.md): " + ", ".join(SCENARIOS),
    )
    p.add_argument(
        "--onset-delay",
        type=float,
        default=0.0,
        help="event seconds added to every failure onset (lets detectors warm up first)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envirostream",
        description="Sensor-fleet telemetry: Kafka → windows and detectors → ClickHouse.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start services, worker and a simulated fleet; live summary")
    _add_simulation_args(up)
    up.add_argument(
        "--for",
        dest="run_for",
        type=float,
        default=None,
        help="stop after this many wall seconds (default: until Ctrl-C)",
    )

    sub.add_parser("worker", help="run the stream worker (scale by running more)")

    sim = sub.add_parser("simulate", help="produce a simulated fleet's readings")
    _add_simulation_args(sim)
    sim.add_argument("--broker-timeout", type=float, default=30.0, help="seconds to wait for Kafka")

    rp = sub.add_parser("replay", help="stream a recorded CSV log as one device's readings")
    rp.add_argument("file", metavar="FILE.csv")
    rp.add_argument("--device", required=True, help="device id of the readings")
    rp.add_argument("--capability", required=True, help="capability name (generic if unknown)")
    rp.add_argument("--timestamp-column", default="timestamp")
    rp.add_argument("--value-column", default="value")
    rp.add_argument("--speed", default="max", help="X times the recorded pace, or max")
    rp.add_argument("--broker-timeout", type=float, default=30.0, help="seconds to wait for Kafka")

    q = sub.add_parser("query", help="run ClickHouse SQL against the configured store")
    q.add_argument("sql")
    q.add_argument(
        "--format",
        default="PrettyCompact",
        choices=[
            "PrettyCompact",
            "CSV",
            "CSVWithNames",
            "JSONEachRow",
            "TSV",
            "TabSeparatedWithNames",
        ],
    )

    infra = sub.add_parser("infra", help="start, stop or report the local services")
    infra.add_argument("action", choices=["up", "down", "status"])

    topics = sub.add_parser("topics", help="create missing topics or describe them")
    topics.add_argument("action", choices=["create", "describe"])

    st = sub.add_parser("status", help="one-screen health summary from live metrics + store")
    st.add_argument("--watch", action="store_true", help="redraw until Ctrl-C")
    st.add_argument("--interval", type=float, default=2.0, help="seconds between redraws")

    al = sub.add_parser("alerts", help="list alerts; acknowledge one or mark a false positive")
    al.add_argument("action", choices=["list", "ack", "false-positive"])
    al.add_argument("alert_id", nargs="?", help="ack/false-positive: the alert's alert_id")
    al.add_argument("--state", default=None, help="list: only alerts in this state")
    al.add_argument("--limit", type=int, default=50, help="list: newest N alerts")
    al.add_argument("--operator", default=None, help="who gives the feedback (default $USER)")
    al.add_argument("--comment", default="", help="free text kept with the feedback")
    al.add_argument(
        "--no-check",
        action="store_true",
        help="send the feedback without checking that the alert is in the alerts table",
    )

    bench = sub.add_parser("bench", help="run a benchmark; last line is JSON")
    bench.add_argument("name", choices=["throughput", "simulator", "nab", "detection"])
    bench.add_argument("--readings", type=int, default=200_000, help="throughput: readings")
    bench.add_argument(
        "--devices", type=int, default=None, help="simulator (10000) / detection (120): fleet size"
    )
    bench.add_argument(
        "--hours", type=float, default=36.0, help="detection: event hours (failures after 24)"
    )
    bench.add_argument("--seed", type=int, default=7, help="detection: fleet seed")
    bench.add_argument("--seconds", type=int, default=10, help="simulator: event seconds")
    bench.add_argument(
        "--window-model",
        choices=["mahalanobis", "hst"],
        default=None,
        help="detection: the device window model (default: ENVIROSTREAM_DETECTOR_WINDOW_MODEL)",
    )
    bench.add_argument(
        "--offline",
        action="store_true",
        help="nab, detection: feed the detection stage in-process instead of running the "
        "readings through the pipeline (private Kafka, worker, ClickHouse store)",
    )
    bench.add_argument(
        "--nab-dir",
        default=None,
        help="nab: the NAB dataset (default: ENVIROSTREAM_NAB_DIR, else ../shared/datasets/nab)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return _dispatch(args, settings)
    except ConfigurationError as exc:
        print(f"envirostream: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except EnviroStreamError as exc:
        print(f"envirostream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    cmd = args.command
    if cmd == "worker":
        from streams.run import run_worker

        run_worker(settings)
        return 0
    if cmd == "simulate":
        return _simulate(args, settings)
    if cmd == "replay":
        return _replay(args, settings)
    if cmd == "query":
        from envirostream.query import run_query

        sys.stdout.write(run_query(settings, args.sql, args.format))
        return 0
    if cmd == "infra":
        from infra.services import services_down, services_status, services_up

        if args.action == "up":
            for line in services_up(settings):
                print(line)
        elif args.action == "down":
            for line in services_down(settings):
                print(line)
        else:
            for line in services_status(settings):
                print(line)
        return 0
    if cmd == "topics":
        return _topics(args.action, settings)
    if cmd == "up":
        from envirostream.demo import run_up

        return run_up(settings, _sim_config(args), run_for=args.run_for)
    if cmd == "status":
        from envirostream.status import run_status

        return run_status(settings, watch=args.watch, interval=args.interval)
    if cmd == "alerts":
        return _alerts(args, settings)
    if cmd == "bench" and args.name == "simulator":
        from bench.simulator import run_simulator_bench

        run_simulator_bench(settings, devices=args.devices or 10_000, seconds=args.seconds)
        return 0
    if cmd == "bench" and args.name == "detection":
        from bench.detection import run_detection_bench

        run_detection_bench(
            settings,
            offline=args.offline,
            devices=args.devices or 120,
            hours=args.hours,
            seed=args.seed,
            window_model=args.window_model,
        )
        return 0
    if cmd == "bench" and args.name == "nab":
        from bench.nab import run_nab_bench

        run_nab_bench(settings, offline=args.offline, nab_dir=args.nab_dir)
        return 0
    if cmd == "bench":
        from bench.throughput import run_throughput_bench

        run_throughput_bench(settings, readings=args.readings)
        return 0
    msg = f"unknown command {cmd!r}"
    raise EnviroStreamError(msg)


def _sim_config(args: argparse.Namespace) -> SimulationConfig:

    try:
        return SimulationConfig(
            devices=args.devices,
            kinds=tuple(args.kinds),
            rate_hz=args.rate,
            speedup=args.speedup,
            start_ms=args.start,
            duration_s=args.duration,
            seed=args.seed,
            failure_rate=getattr(args, "failure_rate", None),
            scenario=getattr(args, "scenario", None),
            onset_delay_s=getattr(args, "onset_delay", 0.0),
        )
    except ValueError as exc:
        raise EnviroStreamError(str(exc)) from exc


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from prometheus_client import CollectorRegistry

    from producers.simulator import run_simulation
    from schemas import AvroCodec
    from streams.run import serve_metrics
    from topics import READINGS
    from topics.producer import ProducerMetrics, RecordProducer, wait_for_broker

    config = _sim_config(args)
    wait_for_broker(settings.bootstrap_servers, timeout=args.broker_timeout)
    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry, "simulator")
    serve_metrics(settings.simulator_metrics_port, registry, "ENVIROSTREAM_SIMULATOR_METRICS_PORT")
    producer = RecordProducer(settings.bootstrap_servers)
    stop = threading.Event()
    try:
        report = run_simulation(
            config,
            producer,
            AvroCodec(registry_url=settings.schema_registry_url),
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


def _replay(args: argparse.Namespace, settings: Settings) -> int:
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


def _alerts(args: argparse.Namespace, settings: Settings) -> int:
    from envirostream.feedback import list_alerts, send_feedback

    if args.action == "list":
        sys.stdout.write(list_alerts(settings, state=args.state, limit=args.limit))
        return 0
    if not args.alert_id:
        msg = f"`envirostream alerts {args.action}` needs an ALERT_ID (`envirostream alerts list`)"
        raise EnviroStreamError(msg)
    print(
        send_feedback(
            settings,
            args.alert_id,
            args.action,
            operator=args.operator,
            comment=args.comment,
            check=not args.no_check,
        )
    )
    return 0


def _topics(action: str, settings: Settings) -> int:
    from topics import TopicAdmin, topic_specs
    from topics.producer import wait_for_broker

    wait_for_broker(settings.bootstrap_servers, timeout=30)
    admin = TopicAdmin(settings.bootstrap_servers)
    specs = topic_specs(settings)
    if action == "create":
        created = admin.create_missing(specs)
        print("created: " + (", ".join(created) if created else "nothing (all exist)"))
    for state in admin.describe(specs):
        print(
            f"{state.name:28} "
            + (
                f"partitions={state.partitions} retention.ms={state.retention_ms} "
                f"cleanup.policy={state.cleanup_policy}"
                if state.exists
                else "MISSING"
            )
        )
    drift = admin.drift(specs)
    for d in drift:
        print(f"drift: {d}")
    return 1 if drift else 0
