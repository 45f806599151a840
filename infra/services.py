"""The local services as one unit: ``envirostream infra up|down|status``.

Kafka starts only when ``ENVIROSTREAM_KAFKA_BOOTSTRAP`` is unset, the embedded ClickHouse
store only when ``ENVIROSTREAM_CLICKHOUSE_URL`` is unset; otherwise the configured
cluster/server is used and nothing is started. ``infra up`` also starts the local
Mosquitto (the MQTT gateway's broker, docs/gateway.md) when ``ENVIROSTREAM_MQTT_URL`` is
unset; ``envirostream up`` and the test harness do not.
"""

from __future__ import annotations

from core.settings import Settings
from infra.kafka import kafka_status, start_kafka, stop_kafka
from infra.mosquitto import mosquitto_status, start_mosquitto, stop_mosquitto
from infra.store import start_store, stop_store, store_status
from topics.kafka_config import describe_security

__all__ = ["services_down", "services_status", "services_up", "started_services"]


def started_services(settings: Settings) -> list[str]:
    """Start what is missing; return the names of the services this call started."""
    started = []
    if settings.uses_local_kafka and not kafka_status(settings).get("running"):
        start_kafka(settings)
        started.append("kafka")
    elif settings.uses_local_kafka:
        start_kafka(settings)  # idempotent: waits until it answers
    if settings.uses_local_store and not store_status(settings).get("running"):
        start_store(settings)
        started.append("store")
    elif settings.uses_local_store:
        start_store(settings)
    return started


def services_up(settings: Settings) -> list[str]:
    started = started_services(settings)
    if settings.mqtt_url is None and not mosquitto_status(settings)["running"]:
        start_mosquitto(settings)
        started.append("mosquitto")
    lines = [f"started: {', '.join(started) if started else 'nothing (all running)'}"]
    return lines + services_status(settings)


def services_down(settings: Settings) -> list[str]:
    stopped = []
    if stop_mosquitto(settings):
        stopped.append("mosquitto")
    if stop_store(settings):
        stopped.append("store")
    if stop_kafka(settings):
        stopped.append("kafka")
    return [f"stopped: {', '.join(stopped) if stopped else 'nothing (none running)'}"]


def services_status(settings: Settings) -> list[str]:
    lines = []
    if settings.uses_local_kafka:
        k = kafka_status(settings)
        state = f"running (pid {k.get('pid')})" if k.get("running") else "stopped"
        lines.append(
            f"kafka  {settings.bootstrap_servers:24} {state}, {describe_security(settings)}"
        )
    else:
        lines.append(
            f"kafka  {settings.bootstrap_servers:24} external (ENVIROSTREAM_KAFKA_BOOTSTRAP), "
            + describe_security(settings)
        )
    if settings.uses_local_store:
        s = store_status(settings)
        state = f"running (pid {s.get('pid')})" if s.get("running") else "stopped"
        lines.append(
            f"store  {settings.store_url:24} {state}, data {settings.data_dir / 'clickhouse'}"
        )
    else:
        lines.append(f"store  {settings.store_url:24} external (ENVIROSTREAM_CLICKHOUSE_URL)")
    if settings.mqtt_url is None:
        m = mosquitto_status(settings)
        state = f"running (pid {m['pid']})" if m["running"] else "stopped"
        lines.append(f"mqtt   {'127.0.0.1:' + str(settings.mqtt_port):24} {state}")
    else:
        lines.append(f"mqtt   {settings.mqtt_url:24} external (ENVIROSTREAM_MQTT_URL)")
    return lines
