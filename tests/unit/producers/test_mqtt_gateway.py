"""The gateway's loop with a stand-in producer and MQTT client: acks only behind Kafka."""

from __future__ import annotations

import json
import threading
import time

from prometheus_client import CollectorRegistry

from producers.mqtt_gateway import GatewayMetrics, MqttGateway, Received
from schemas import AvroCodec
from topics import DLQ, READINGS

TOPIC = "devices/m-1/telemetry"
GOOD = json.dumps({"capability": "SPEED", "value": 12.5, "timestamp": 1_700_000_000_000}).encode()


class FakeProducer:
    """Kafka that holds ``pending`` records for a few flushes; notes what the client acked."""

    def __init__(self, pending_per_flush: list[int], client: FakeClient, then: int = 0) -> None:
        self.script = pending_per_flush
        self.then = then  # what every flush after the script returns
        self.client = client
        self.sent: list[tuple[str, list, list, list | None]] = []
        self.acks_seen_at_flush: list[list[int]] = []
        self.failed = 0
        self.last_error = None

    def send_batch(self, topic: str, keys: list, values: list, headers: list | None = None) -> None:
        self.sent.append((topic, list(keys), list(values), headers))

    def flush(self, timeout: float = 60.0) -> int:
        self.acks_seen_at_flush.append(list(self.client.acked))
        if self.script:
            return self.script.pop(0)
        if self.then:
            time.sleep(0.001)  # Kafka away: flush waits (briefly here)
        return self.then


class FakeClient:
    def __init__(self) -> None:
        self.acked: list[int] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acked.append(mid)

    def disconnect(self) -> None:
        pass

    def loop_stop(self) -> None:
        pass


def gateway(
    producer_script: list[int], max_pending: int = 10, then: int = 0
) -> tuple[MqttGateway, FakeProducer]:
    client = FakeClient()
    producer = FakeProducer(producer_script, client, then)
    gw = MqttGateway(
        "mqtt://gw:pw@127.0.0.1:1",
        producer,  # type: ignore[arg-type]
        AvroCodec(),
        GatewayMetrics(CollectorRegistry()),
        max_pending=max_pending,
    )
    gw.client = client  # type: ignore[assignment]
    return gw, producer


def test_messages_are_acked_only_after_kafka_acknowledged_everything() -> None:
    gw, producer = gateway([3, 3, 1, 0])  # Kafka slow: three flushes leave records behind
    gw._queue.put(Received(1, 1, TOPIC, GOOD))
    gw._queue.put(Received(2, 1, TOPIC, b"not json"))
    gw._queue.put(Received(3, 0, TOPIC, GOOD))
    gw.run(until=lambda: gw.acked > 0)
    assert producer.acks_seen_at_flush == [[], [], [], []]
    assert gw.client.acked == [1, 2]  # type: ignore[attr-defined]  # QoS 0 needs no PUBACK
    assert (gw.messages, gw.readings, gw.rejected) == (3, 2, 1)
    (topic, keys, values, _), (dlq, dlq_keys, dlq_values, headers) = producer.sent
    assert (topic, keys, len(values)) == (READINGS, [b"m-1", b"m-1"], 2)
    assert (dlq, dlq_keys, dlq_values) == (DLQ, [b"m-1"], [b"not json"])
    assert headers is not None
    named = {k: v.decode() for k, v in headers[0]}
    assert named["error.reason"] == "invalid_json"
    assert named["mqtt.topic"] == TOPIC and named["source.topic"] == f"mqtt:{TOPIC}"


def test_a_batch_kafka_refused_is_sent_again_before_the_ack() -> None:
    gw, producer = gateway([0, 0])
    calls = {"n": 0}
    real_flush = producer.flush

    def flush_failing_once(timeout: float = 60.0) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            producer.failed += 1  # the broker refused a record of the first attempt
        return real_flush(timeout)

    producer.flush = flush_failing_once  # type: ignore[method-assign]
    gw._queue.put(Received(7, 1, TOPIC, GOOD))
    gw._stop.wait = lambda timeout=None: False  # type: ignore[method-assign]  # no backoff
    gw.run(until=lambda: gw.acked > 0)
    assert [t for t, *_ in producer.sent] == [READINGS, READINGS]
    assert producer.acks_seen_at_flush == [[], []]
    assert gw.client.acked == [7]  # type: ignore[attr-defined]


def test_a_stopped_gateway_acks_nothing_and_counts_unsent_qos0_as_lost() -> None:
    gw, producer = gateway([], then=5)  # Kafka never answers
    registry_value = gw.metrics.qos0_lost
    gw._queue.put(Received(1, 1, TOPIC, GOOD))
    gw._queue.put(Received(2, 0, TOPIC, GOOD))
    runner = threading.Thread(target=gw.run)
    runner.start()
    while len(producer.acks_seen_at_flush) < 2:
        threading.Event().wait(0.01)
    gw._queue.put(Received(3, 0, TOPIC, GOOD))  # arrives while Kafka is away
    gw.stop()
    runner.join(10)
    assert not runner.is_alive()
    assert gw.client.acked == []  # type: ignore[attr-defined]
    # QoS 0: the one in the unacknowledged batch and the queued one; QoS 1 is redelivered
    assert registry_value._value.get() == 2


def test_a_full_queue_blocks_the_network_thread_until_stopped() -> None:
    gw, _ = gateway([], max_pending=1)
    gw._queue.put(Received(1, 1, TOPIC, GOOD))

    class Msg:
        mid, qos, topic, payload = 2, 0, TOPIC, GOOD

    handler = threading.Thread(target=gw._on_message, args=(None, None, Msg()))
    handler.start()
    handler.join(0.5)
    assert handler.is_alive()  # not buffered beyond the bound: the MQTT reader waits
    gw.stop()
    handler.join(5)
    assert not handler.is_alive()
    assert gw.metrics.qos0_lost._value.get() == 1
    assert gw._queue.qsize() == 1


def test_messages_of_an_earlier_connection_are_not_acked_by_their_stale_mid() -> None:
    gw, _ = gateway([])
    gw._session = 2  # reconnected: the broker resends what connection 1 left unacknowledged
    gw._queue.put(Received(5, 1, TOPIC, GOOD, session=1))
    gw._queue.put(Received(5, 1, TOPIC, GOOD, session=2))  # the resend, same mid
    gw.run(until=lambda: gw.messages > 0)
    assert gw.client.acked == [5]  # type: ignore[attr-defined]  # once, for the resend
    assert gw.stale == 1 and gw.readings == 2  # both produced: same reading id, deduplicated
