"""The MQTT gateway: device messages from a broker to ``telemetry.readings``, no loss.

One paho client (MQTT 3.1.1, persistent session, ``manual_ack``) receives on its network
thread and hands each message to a bounded queue; the gateway's loop takes what is queued,
validates each message (:mod:`producers.mqtt_payload`), produces the good readings to
``telemetry.readings`` keyed by device id (murmur2, as every producer of the project) and
the refused messages to ``telemetry.dlq``, waits until Kafka acknowledged all of them and
only then acknowledges the MQTT messages (PUBACK). So:

- a gateway killed before the PUBACK gets the message redelivered by the broker (its
  session is persistent); the readings may then be in Kafka twice, with the same reading
  ids, which the store deduplicates;
- when Kafka does not answer the loop keeps waiting for it and reads nothing more: the
  queue fills, the network thread blocks on it, and the broker holds the rest (its own
  inflight limit and queue), so nothing is buffered without bound;
- QoS 0 messages cannot be redelivered: those not in Kafka when the gateway stops are
  counted (``envirostream_gateway_qos0_lost``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from core.errors import ConfigurationError, ServiceUnavailableError
from core.secrets import redact_url
from producers.mqtt_payload import READING, PayloadError, device_from_topic, parse_message
from schemas import AvroCodec, EncodeError
from topics import DLQ, READINGS
from topics.producer import RecordProducer

__all__ = ["GatewayMetrics", "MqttGateway", "Received", "mqtt_client", "parse_mqtt_url"]

log = logging.getLogger(__name__)
STAGE = "mqtt-gateway"


@dataclass(frozen=True, slots=True)
class Received:
    """One MQTT message as the network thread handed it over."""

    mid: int
    qos: int
    topic: str
    payload: bytes
    session: int = 0  # which connection delivered it (its mid means nothing on another)
    received: float = field(default_factory=time.monotonic)


class GatewayMetrics:
    """The gateway's series, on an injected registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.messages_in = Counter(
            "envirostream_gateway_messages", "MQTT messages received.", ["qos"], registry=registry
        )
        self.readings_out = Counter(
            "envirostream_gateway_readings", "Readings acknowledged by Kafka.", registry=registry
        )
        self.rejected = Counter(
            "envirostream_gateway_rejected",
            "MQTT messages refused (sent to the DLQ), by reason.",
            ["reason"],
            registry=registry,
        )
        self.ack_seconds = Histogram(
            "envirostream_gateway_ack_seconds",
            "From receiving an MQTT message to acknowledging it (after Kafka acknowledged).",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=registry,
        )
        self.qos0_lost = Counter(
            "envirostream_gateway_qos0_lost",
            "QoS 0 messages received but not in Kafka when the gateway stopped.",
            registry=registry,
        )
        self.pending = Gauge(
            "envirostream_gateway_pending", "MQTT messages not yet acknowledged.", registry=registry
        )


def parse_mqtt_url(url: str) -> dict[str, Any]:
    """Host, port, credentials and TLS of an ``mqtt://`` or ``mqtts://`` URL.

    >>> parse_mqtt_url("mqtt://gw:s3cret@127.0.0.1:18830")["port"]
    18830
    >>> parse_mqtt_url("mqtts://broker.example")["port"], parse_mqtt_url("mqtts://b")["tls"]
    (8883, True)
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        msg = f"{redact_url(url)!r}: expected mqtt(s)://[user:pw@]host[:port]"
        setting = "ENVIROSTREAM_MQTT_URL"
        raise ConfigurationError(setting, msg)
    tls = parts.scheme == "mqtts"
    return {
        "host": parts.hostname,
        "port": parts.port or (8883 if tls else 1883),
        "username": urllib.parse.unquote(parts.username) if parts.username else None,
        "password": urllib.parse.unquote(parts.password) if parts.password else None,
        "tls": tls,
    }


def mqtt_client(url: str, client_id: str, *, persistent: bool) -> tuple[mqtt.Client, str]:
    """A paho client for ``url`` (manual acks, MQTT 3.1.1) and the address it will use."""
    conf = parse_mqtt_url(url)
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=not persistent,
        protocol=mqtt.MQTTv311,
        manual_ack=True,
    )
    if conf["username"] is not None:
        client.username_pw_set(conf["username"], conf["password"])
    if conf["tls"]:
        client.tls_set()
    client.connect_async(conf["host"], conf["port"], keepalive=30)
    return client, f"{conf['host']}:{conf['port']}"


class MqttGateway:
    """Reads ``topic_filter`` and writes readings to Kafka; acknowledges behind Kafka."""

    def __init__(
        self,
        url: str,
        producer: RecordProducer,
        codec: AvroCodec,
        metrics: GatewayMetrics,
        *,
        topic_filter: str = "devices/+/telemetry",
        qos: int = 1,
        client_id: str = "envirostream-gateway",
        max_pending: int = 1000,
        max_batch: int = 500,
        tenant: str | None = None,
    ) -> None:
        self.producer = producer
        self.tenant = tenant
        self.codec = codec
        self.metrics = metrics
        self.topic_filter = topic_filter
        self.qos = qos
        self.max_batch = max_batch
        self.tenant = tenant  # None: readings of any tenant (docs/gateway.md, "Tenants")
        self._queue: queue.Queue[Received] = queue.Queue(maxsize=max_pending)
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._refused: str | None = None
        self._session = 0  # connections so far; a reconnect makes older mids stale
        self._session_lock = threading.Lock()
        self.stale = 0  # messages of an earlier connection: not acked, the broker resends
        self.messages = self.readings = self.rejected = self.acked = 0
        self.client, self.address = mqtt_client(url, client_id, persistent=qos > 0)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    # -- the network thread -----------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            self._connected.set()
            return
        with self._session_lock:
            self._session += 1
        client.subscribe(self.topic_filter, qos=self.qos)
        self._connected.set()
        log.info("gateway connected to %s, subscribed to %s", self.address, self.topic_filter)

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        item = Received(msg.mid, msg.qos, msg.topic, bytes(msg.payload), self._session)
        self.metrics.messages_in.labels(str(msg.qos)).inc()
        while not self._stop.is_set():  # blocks the network thread: back-pressure
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        if item.qos == 0:
            self.metrics.qos0_lost.inc()

    # -- the gateway loop -------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        """Connect and subscribe; raise a clear error if the broker refuses or is away."""
        self.client.loop_start()
        if not self._connected.wait(timeout):
            self.client.loop_stop()
            service = "MQTT broker"
            raise ServiceUnavailableError(service, self.address, "no CONNACK within the timeout")
        if self._refused is not None:
            self.client.loop_stop()
            msg = (
                f"the MQTT broker at {self.address} refused the gateway: {self._refused} "
                "(check the user and password in the URL)"
            )
            setting = "ENVIROSTREAM_MQTT_URL"
            raise ConfigurationError(setting, msg)

    def stop(self) -> None:
        self._stop.set()

    def run(self, until: Callable[[], bool] = lambda: False) -> None:
        """Move messages until :meth:`stop` or ``until()``; then disconnect."""
        unsent: list[Received] = []  # a batch Kafka had not acknowledged when stopped
        try:
            while not self._stop.is_set() and not until():
                batch = self._take()
                if not batch:
                    self.producer.flush(0)
                elif self._deliver(batch):
                    self._ack(batch)
                else:
                    unsent = batch
        finally:
            while True:
                try:
                    unsent.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self.metrics.qos0_lost.inc(sum(item.qos == 0 for item in unsent))
            self.client.disconnect()
            self.client.loop_stop()

    def _take(self) -> list[Received]:
        try:
            batch = [self._queue.get(timeout=0.1)]
        except queue.Empty:
            return []
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self.metrics.pending.set(len(batch) + self._queue.qsize())
        return batch

    def _deliver(self, batch: list[Received]) -> bool:
        """Produce the batch and wait for Kafka; False if stopped before it acknowledged."""
        keys: list[bytes] = []
        values: list[bytes] = []
        letters: list[tuple[Received, PayloadError]] = []
        for item in batch:
            try:
                readings = parse_message(item.topic, item.payload, self.codec, tenant=self.tenant)
                encoded = self.codec.encode_batch(READING, readings)
            except PayloadError as exc:
                letters.append((item, exc))
                continue
            except EncodeError as exc:
                letters.append((item, PayloadError(str(exc), reason="encode_error")))
                continue
            key = readings[0]["device_id"].encode()
            keys.extend([key] * len(encoded))
            values.extend(encoded)
        started, next_warning = time.monotonic(), 5.0
        while True:
            failed = self.producer.failed
            self.producer.send_batch(READINGS, keys, values)
            if letters:
                self.producer.send_batch(
                    DLQ,
                    [_dlq_key(item.topic) for item, _ in letters],
                    [item.payload for item, _ in letters],
                    headers=[_dlq_headers(item, exc) for item, exc in letters],
                )
            while self.producer.flush(1.0) > 0:
                waited = time.monotonic() - started
                if waited >= next_warning:  # after 5 s, 20 s, 80 s, 320 s, then every 10 min
                    log.warning("Kafka has not acknowledged for %.0fs; not reading MQTT", waited)
                    next_warning = min(next_warning * 4, waited + 600)
                if self._stop.is_set():
                    return False
            if self.producer.failed == failed:
                break
            log.warning(
                "Kafka refused records (%s); sending the batch again", self.producer.last_error
            )
            if self._stop.wait(1.0):
                return False
        self.readings += len(values)
        self.rejected += len(letters)
        self.metrics.readings_out.inc(len(values))
        for _, refused in letters:
            self.metrics.rejected.labels(refused.reason).inc()
        return True

    def _ack(self, batch: list[Received]) -> None:
        now = time.monotonic()
        with self._session_lock:  # a reconnect between the check and the ack would reuse mids
            for item in batch:
                if item.qos > 0 and item.session != self._session:
                    self.stale += 1  # redelivered on the new connection; its readings again
                    continue
                if item.qos > 0:
                    self.client.ack(item.mid, item.qos)
                self.metrics.ack_seconds.observe(now - item.received)
        self.messages += len(batch)
        self.acked += len(batch)
        self.metrics.pending.set(self._queue.qsize())


def _dlq_key(topic: str) -> bytes | None:
    try:
        return device_from_topic(topic).encode()
    except PayloadError:
        return None


def _dlq_headers(item: Received, exc: PayloadError) -> list[tuple[str, bytes]]:
    """The DLQ headers of the worker (``error.*``, ``source.*``) plus ``mqtt.topic``."""
    return [
        ("error.reason", exc.reason.encode()),
        ("error.message", exc.detail.encode()),
        ("error.stage", STAGE.encode()),
        ("source.topic", f"mqtt:{item.topic}".encode()),
        ("mqtt.topic", item.topic.encode()),
        ("mqtt.qos", str(item.qos).encode()),
    ]
