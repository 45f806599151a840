"""``envirostream dlq list|replay``: summarise dead letters; re-inject them once fixed.

``list`` counts the dead letters of ``telemetry.dlq`` by reason, device, source topic, with
the oldest and newest; ``replay`` sends the selected ones, original key and bytes, to their
source topic again. Both read the topic from its start to the end it had when they began
(no consumer group offsets: each run sees every retained letter). ``--since`` selects by
when a record was dead-lettered.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.settings import Settings

if TYPE_CHECKING:
    from schemas import AvroCodec
    from topics.dead_letters import DeadLetterRecord

__all__ = ["add_parser", "device_decoder", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "dlq", help="summarise dead letters or re-inject them to their source topic"
    )
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="R",
        help="only letters with this error.reason (repeat for several)",
    )
    p.add_argument(
        "--since",
        default=None,
        metavar="T",
        help="only letters dead-lettered at or after T: ISO time (UTC if no zone) or 30m, 2h, 7d",
    )
    p.add_argument("--dry-run", action="store_true", help="replay: count, send nothing")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("--top", type=int, default=20, help="list: devices shown in the table")
    p.add_argument("--broker-timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    return p


def device_decoder(codec: AvroCodec) -> Callable[[DeadLetterRecord], str | None]:
    """A letter's ``device_id``, read with the schema of its source topic; None when the
    value does not decode (or comes from a topic without a schema here)."""
    from schemas import DecodeError
    from topics import AGGREGATES, ALERTS, ALERTS_FEEDBACK, ANOMALIES, READINGS

    schema_of = {
        READINGS: "UniversalSensorReading",
        AGGREGATES: "WindowAggregate",
        ANOMALIES: "AnomalyScore",
        ALERTS: "Alert",
        ALERTS_FEEDBACK: "AlertFeedback",
    }

    def device_of(letter: DeadLetterRecord) -> str | None:
        name = schema_of.get(letter.source_topic or "")
        if name is None or not letter.value:
            return None
        decoded = codec.decode_batch(name, [letter.value])[0]
        if isinstance(decoded, DecodeError):
            return None
        device = decoded.get("device_id")
        return str(device) if device else None

    return device_of


def run(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from confluent_kafka.admin import AdminClient

    from core.errors import EnviroStreamError
    from schemas import AvroCodec, SchemaRegistryClient
    from topics.dead_letters import (
        LetterFilter,
        parse_since,
        read_dead_letters,
        replay,
        summarise,
    )
    from topics.kafka_config import librdkafka_config
    from topics.producer import RecordProducer, wait_for_broker

    if args.top < 0:
        msg = f"--top must be 0 or more, got {args.top}"
        raise EnviroStreamError(msg)
    since_ms = None if args.since is None else parse_since(args.since, dt.datetime.now(dt.UTC))
    where = LetterFilter(reasons=frozenset(args.reason), since_ms=since_ms)
    wait_for_broker(settings, timeout=args.broker_timeout)
    letters = read_dead_letters(settings, since_ms=since_ms, stall_timeout=args.broker_timeout)

    if args.action == "list":
        codec = AvroCodec(registry=SchemaRegistryClient.from_settings(settings))
        summary = summarise(letters, where, device_decoder(codec))
        out = summary.to_json() + "\n" if args.format == "json" else summary.to_table(args.top)
        sys.stdout.write(out)
        return 0

    existing = set(AdminClient(librdkafka_config(settings)).list_topics(timeout=10).topics)
    producer = None if args.dry_run else RecordProducer(settings)
    report = replay(letters, where, producer, existing)
    if args.format == "json":
        sys.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        sys.stdout.write(report.to_table())
    if report.undelivered:
        print(
            f"envirostream: {report.undelivered} dead letters were not acknowledged by the "
            "broker; run the replay again (re-sent readings are stored once)",
            file=sys.stderr,
        )
        return 1
    return 0
