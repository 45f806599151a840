"""Readings published over MQTT, the way devices send them: ``simulate --via mqtt``.

:class:`MqttPublisher` has the producing loop's interface (``send_batch``, ``flush``,
``delivered``, ``failed``; :class:`topics.producer.ReadingSender`), so the fleet simulator
runs unchanged over it. Each reading is one QoS 1 message (the project's Avro, single-object
encoding) on its device's topic (``devices/<id>/telemetry``); *delivered* counts the broker's
PUBACKs (MQTT 5, so a broker that refuses a message — the ACL — says so and it counts as
*failed*). The gateway takes it from there: acknowledged by the broker means stored by the
broker, which hands it to the gateway until the gateway acknowledges it behind Kafka.
Unacknowledged messages are bounded (``max_unacked``): ``send_batch`` waits (backpressure).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt

from core.errors import ConfigurationError, ServiceUnavailableError
from producers.mqtt_gateway import parse_mqtt_url

__all__ = ["MqttPublisher", "publish_template"]


def publish_template(topic_filter: str) -> str:
    """The topic a device publishes on, from the gateway's filter (``{device}`` for ``+``).

    >>> publish_template("site-a/devices/+/telemetry")
    'site-a/devices/{device}/telemetry'
    """
    levels = topic_filter.split("/")
    if levels.count("+") != 1 or "#" in levels or "{" in topic_filter:
        setting = "ENVIROSTREAM_MQTT_TOPIC"
        msg = (
            f"{topic_filter!r}: simulate --via mqtt needs a filter with exactly one '+' (the "
            "device id) and no '#', such as devices/+/telemetry"
        )
        raise ConfigurationError(setting, msg)
    return "/".join("{device}" if level == "+" else level for level in levels)


class MqttPublisher:
    """Publishes readings to an MQTT broker at QoS 1 and counts the broker's acks."""

    def __init__(
        self,
        url: str,
        client_id: str,
        *,
        template: str = "devices/{device}/telemetry",
        max_unacked: int = 10_000,
        connect_timeout: float = 30.0,
    ) -> None:
        conf = parse_mqtt_url(url)
        self.template = template
        self.max_unacked = max_unacked
        self.sent = 0
        self.delivered = 0
        self.failed = 0
        self.last_error: str | None = None
        self._cond = threading.Condition()
        self._connected = threading.Event()
        self._refused: str | None = None
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if conf["username"] is not None:
            client.username_pw_set(conf["username"], conf["password"])
        if conf["tls"]:
            client.tls_set()
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        self.client = client
        self.address = f"{conf['host']}:{conf['port']}"
        client.connect_async(conf["host"], conf["port"], keepalive=30)
        client.loop_start()
        if not self._connected.wait(connect_timeout) or self._refused:
            client.loop_stop()
            why = self._refused or f"no connection within {connect_timeout:.0f}s"
            service = "MQTT broker"
            hint = f"{why}; start it with `envirostream infra up` or set ENVIROSTREAM_MQTT_URL"
            raise ServiceUnavailableError(service, self.address, hint)

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refused = f"the broker refused the connection: {reason}"
        self._connected.set()

    def _on_publish(self, _c: Any, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
        with self._cond:
            if reason.is_failure:
                self.failed += 1
                self.last_error = f"broker refused a message: {reason}"
            else:
                self.delivered += 1
            self._cond.notify_all()

    @property
    def unacked(self) -> int:
        return self.sent - self.delivered - self.failed

    def send_batch(
        self, topic: str, keys: Sequence[bytes | str | None], values: Sequence[bytes | None]
    ) -> None:
        """Publish each value on its key's (device's) topic; ``topic`` (Kafka's) is unused."""
        del topic
        publish = self.client.publish
        template = self.template
        for key, value in zip(keys, values, strict=True):
            if key is None:
                msg = "an MQTT reading needs its device id (the key)"
                raise ValueError(msg)
            device = key.decode() if isinstance(key, bytes) else key
            with self._cond:
                while self.unacked >= self.max_unacked:
                    self._cond.wait(1.0)
                self.sent += 1
            publish(template.format(device=device), value, qos=1)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait up to ``timeout`` s for the broker's acks; return how many are missing."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.unacked > 0 and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(min(left, 1.0))
            return self.unacked

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
