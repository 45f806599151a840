"""``envirostream gateway mqtt|add-device``: devices' MQTT messages into the pipeline.

``mqtt`` runs the gateway (:mod:`producers.mqtt_gateway`) against ``ENVIROSTREAM_MQTT_URL``
or, when unset, the local Mosquitto (started if it is not running). ``add-device ID`` gives
a device a password on the local broker and prints it once (docs/gateway.md).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from typing import Any

from core.errors import EnviroStreamError
from core.settings import Settings
from envirostream.commands._simulation import tenant_arg

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "gateway", help="the MQTT gateway: device messages to telemetry.readings"
    )
    p.add_argument("action", choices=["mqtt", "add-device"])
    p.add_argument("device", nargs="?", default=None, help="add-device: the device id")
    p.add_argument(
        "--client-id",
        default="envirostream-gateway",
        help="mqtt: MQTT client id (its persistent session holds unacknowledged messages)",
    )
    p.add_argument(
        "--topic",
        default=None,
        metavar="PATTERN",
        help="mqtt: topic filter (default ENVIROSTREAM_MQTT_TOPIC, devices/+/telemetry)",
    )
    p.add_argument(
        "--seconds", type=float, default=None, help="mqtt: stop after this long (default: run)"
    )
    p.add_argument("--broker-timeout", type=float, default=30.0, help="seconds to wait for Kafka")
    p.add_argument(
        "--tenant",
        type=tenant_arg,
        default=None,
        help="mqtt: every reading is of this tenant; a message naming another goes to the DLQ "
        "(tenant_mismatch). Default: the tenant_id each message names (else `default`)",
    )
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "add-device":
        return _add_device(args, settings)
    if args.device is not None:
        msg = f"gateway mqtt takes no device id (got {args.device!r}); did you mean add-device?"
        raise EnviroStreamError(msg)
    if args.seconds is not None and args.seconds <= 0:
        msg = f"--seconds must be positive, got {args.seconds}"
        raise EnviroStreamError(msg)
    from prometheus_client import CollectorRegistry

    from infra.mosquitto import gateway_url, start_mosquitto
    from producers.mqtt_gateway import GatewayMetrics, MqttGateway
    from schemas import AvroCodec, SchemaRegistryClient
    from streams.run import serve_metrics
    from topics.producer import RecordProducer, wait_for_broker

    topic_filter = settings.mqtt_topic if args.topic is None else args.topic
    if not topic_filter.strip() or "#" in topic_filter.split("/")[:-1]:
        msg = f"--topic {topic_filter!r}: expected an MQTT topic filter such as devices/+/telemetry"
        raise EnviroStreamError(msg)
    if settings.mqtt_url is None:
        start_mosquitto(settings)
    wait_for_broker(settings, timeout=args.broker_timeout)
    registry = CollectorRegistry()
    metrics = GatewayMetrics(registry)
    serve_metrics(settings.gateway_metrics_port, registry, "ENVIROSTREAM_GATEWAY_METRICS_PORT")
    gateway = MqttGateway(
        gateway_url(settings).get_secret_value(),
        RecordProducer(settings, linger_ms=5),
        AvroCodec(registry=SchemaRegistryClient.from_settings(settings)),
        metrics,
        topic_filter=topic_filter,
        qos=settings.mqtt_qos,
        client_id=args.client_id,
        max_pending=settings.mqtt_max_pending_messages,
        tenant=args.tenant,
    )
    signal.signal(signal.SIGTERM, lambda *_: gateway.stop())
    gateway.start()
    print(
        f"gateway: {gateway.address} {topic_filter} (QoS {settings.mqtt_qos}"
        + (f", tenant {args.tenant}" if args.tenant else "")
        + ") "
        f"-> {settings.bootstrap_servers}",
        flush=True,
    )
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    with contextlib.suppress(KeyboardInterrupt):
        gateway.run(until=lambda: deadline is not None and time.monotonic() >= deadline)
    print(
        f"gateway: {gateway.messages} messages acknowledged, {gateway.readings} readings "
        f"to Kafka, {gateway.rejected} messages to the DLQ",
        flush=True,
    )
    return 0


def _add_device(args: argparse.Namespace, settings: Settings) -> int:
    from infra.mosquitto import add_device

    if args.device is None:
        msg = "gateway add-device needs a device id: envirostream gateway add-device ID"
        raise EnviroStreamError(msg)
    if settings.mqtt_url is not None:
        msg = (
            "gateway add-device manages the local Mosquitto only; ENVIROSTREAM_MQTT_URL is set "
            "(add the device on that broker)"
        )
        raise EnviroStreamError(msg)
    password = add_device(settings, args.device)
    print(f"device {args.device}: password {password}", file=sys.stdout)
    print(f"publish to devices/{args.device}/telemetry as user {args.device}", file=sys.stderr)
    return 0
