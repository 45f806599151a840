"""A local single-node Apache Kafka (KRaft broker + controller) built from Maven Central jars.

No Docker: Maven resolves ``org.apache.kafka:kafka_2.13`` and a log4j2 binding into
``<cache_dir>/kafka-<version>/libs`` once (:mod:`infra.kafka_jars`); the broker runs
``java -cp 'libs/*' kafka.Kafka`` with its state under ``<data_dir>/kafka``; a secured client
listener when the settings ask for one (:mod:`infra.kafka_security`). Start, stop and
status are idempotent; ready means it answers a metadata request with our cluster id. CLI:
``python -m infra.kafka fetch|start|stop|status`` (used by ``make bootstrap``)."""

from __future__ import annotations

import base64
import json
import logging
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from core.errors import ConfigurationError, EnviroStreamError, ServiceUnavailableError
from core.settings import Settings, load_settings
from infra.kafka_jars import MARKER, POM, KafkaSetupError, ensure_kafka_jars, kafka_home
from infra.kafka_security import secure_listener_properties, upsert_scram_user
from infra.processes import (
    ServiceProcess,
    port_open,
    read_pid,
    start_service,
    stop_service,
    wait_until,
)
from topics.kafka_config import KafkaTarget, kafka_address, librdkafka_config

__all__ = [
    "MARKER",
    "POM",
    "KafkaSetupError",
    "ensure_kafka_jars",
    "kafka_home",
    "kafka_service",
    "kafka_status",
    "render_server_properties",
    "start_kafka",
    "stop_kafka",
    "wait_for_kafka",
]

LOG4J_CONFIG = Path(__file__).resolve().parent / "kafka" / "log4j2.properties"
NODE_ID = 1
SERVICE_NAME = "kafka"
_FORMAT_TIMEOUT = 120.0


# --- where things live ------------------------------------------------------------------


def kafka_service(settings: Settings) -> ServiceProcess:
    """Pid and log file of the local broker (``<data_dir>/run/kafka.pid``, ``logs/kafka.log``)."""
    return ServiceProcess(SERVICE_NAME, settings.data_dir.resolve())


def _kafka_dir(settings: Settings) -> Path:
    return settings.data_dir.resolve() / "kafka"


def _log_dir(settings: Settings) -> Path:
    return _kafka_dir(settings) / "logs"


def _properties_file(settings: Settings) -> Path:
    return _kafka_dir(settings) / "server.properties"


# --- configuration ----------------------------------------------------------------------


def render_server_properties(settings: Settings) -> str:
    """``server.properties`` of a single-node KRaft broker+controller on loopback (plus a
    secured client listener when the settings ask for one: :mod:`infra.kafka_security`)."""
    port, cport = settings.kafka_port, settings.kafka_controller_port
    values = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # Static quorum (not --standalone): one voter, this node.
        "controller.quorum.voters": f"{NODE_ID}@127.0.0.1:{cport}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(_log_dir(settings)),
        "num.partitions": str(settings.topic_partitions),
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # One broker: every internal topic has a single replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Fewer offsets partitions: a fresh broker is ready for consumer groups sooner.
        "offsets.topic.num.partitions": "10",
        "group.initial.rebalance.delay.ms": "0",
        # Faust declares its own internal topics; ours are created by the topics admin.
        "auto.create.topics.enable": "true",
        "num.network.threads": "3",
        "num.io.threads": "8",
    }
    values = secure_listener_properties(settings, values)
    lines = [
        "# Rendered by infra/kafka.py at every start; edit the settings, not this file.",
        *(f"{key}={value}" for key, value in values.items()),
    ]
    return "\n".join(lines) + "\n"


def _new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, base64url without padding (as Uuid.toString)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like a CLI flag
            return text


def _cluster_id(settings: Settings) -> str | None:
    """The cluster id written into ``meta.properties`` by the storage format, if any."""
    try:
        text = (_log_dir(settings) / "meta.properties").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "cluster.id":
            return value.strip()
    return None


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        msg = (
            "Java 17 or newer not found: the local Kafka broker runs on it; "
            "install OpenJDK 17 (apt-get install openjdk-17-jre-headless)"
        )
        raise KafkaSetupError(msg)
    return java


def _java_argv(settings: Settings, libs: Path, main: str, *args: str) -> list[str]:
    return [
        _java(),
        f"-Xmx{settings.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


def _format_storage(settings: Settings, libs: Path) -> None:
    """Format the log dir for KRaft unless already formatted (``meta.properties`` present)."""
    if _cluster_id(settings) is not None:
        return
    argv = _java_argv(
        settings,
        libs,
        "kafka.tools.StorageTool",
        "format",
        "-t",
        _new_cluster_id(),
        "-c",
        str(_properties_file(settings)),
    )
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=_FORMAT_TIMEOUT, check=False
    )
    if result.returncode != 0 or _cluster_id(settings) is None:
        output = (result.stdout + result.stderr).strip()
        msg = (
            f"formatting Kafka's storage in {_log_dir(settings)} failed "
            f"(exit {result.returncode}); command: {shlex.join(argv)}\n{output[-2000:]}"
        )
        raise KafkaSetupError(msg)


# --- probing ----------------------------------------------------------------------------


def _quiet_logger() -> logging.Logger:
    # librdkafka reports every refused connection; while polling for readiness that is noise.
    logger = logging.getLogger("envirostream.kafka.probe")
    logger.propagate = False
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


def _metadata_cluster_id(kafka: KafkaTarget, timeout: float) -> str | None:
    """The cluster id the broker reports to a metadata request, or None if it does not answer.

    An empty string means a broker answered without a cluster id.
    """
    admin = AdminClient(
        {
            **librdkafka_config(kafka),
            "socket.connection.setup.timeout.ms": max(1000, int(timeout * 1000)),
        },
        logger=_quiet_logger(),
    )
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        return None
    if not metadata.brokers:
        return None
    return str(metadata.cluster_id or "")


def _broker_answers(kafka: KafkaTarget, timeout: float = 2.0) -> bool:
    return _metadata_cluster_id(kafka, timeout) is not None


def _our_broker_answers(settings: Settings, timeout: float = 2.0) -> bool:
    """Our broker answers: metadata comes back carrying the cluster id of our log dir."""
    if not port_open("127.0.0.1", settings.kafka_port):
        return False
    # The loopback PLAINTEXT listener: it answers before any SASL user exists.
    answered = _metadata_cluster_id(f"127.0.0.1:{settings.kafka_port}", timeout)
    return answered is not None and answered == _cluster_id(settings)


def wait_for_kafka(kafka: KafkaTarget, timeout: float) -> None:
    """Wait until a broker at ``bootstrap`` answers a metadata request.

    Raises :class:`ServiceUnavailableError` after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout

    def answers() -> bool:
        remaining = deadline - time.monotonic()
        return _broker_answers(kafka, max(0.5, min(5.0, remaining)))

    if wait_until(answers, timeout, interval=0.3):
        return
    hint = (
        f"no metadata after {timeout:.0f}s; start the local broker with "
        "`envirostream infra up`, or set ENVIROSTREAM_KAFKA_BOOTSTRAP to a reachable cluster"
    )
    raise ServiceUnavailableError(SERVICE_NAME, kafka_address(kafka), hint)


# --- lifecycle --------------------------------------------------------------------------


def _is_our_process(pid: int, properties: Path) -> bool:
    """False when a live pid from our pid file belongs to some other program (pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid file
    return str(properties).encode() in cmdline


def _running_pid(settings: Settings) -> int | None:
    service = kafka_service(settings)
    pid = read_pid(service)
    if pid is not None and not _is_our_process(pid, _properties_file(settings)):
        service.pid_file.unlink(missing_ok=True)
        return None
    return pid


def _refuse_taken_port(port: int, variable: str, settings: Settings) -> None:
    if port_open("127.0.0.1", port):
        msg = (
            f"127.0.0.1:{port} is already in use by another process, not the local broker of "
            f"{settings.data_dir} (which is not running); stop that process or choose a free "
            f"port with {variable}"
        )
        raise ConfigurationError(variable, msg)


def start_kafka(settings: Settings, timeout: float = 90) -> int | None:
    """Start the local broker unless it runs; return its pid (None for an external cluster).

    Raises :class:`ConfigurationError` when a port is taken by something else,
    :class:`KafkaSetupError` when Maven, Java or the storage format fail, and
    :class:`ServiceUnavailableError` when the broker does not answer within ``timeout``.
    """
    if not settings.uses_local_kafka:
        return None
    service = kafka_service(settings)
    address = settings.bootstrap_servers

    def ready() -> bool:
        return _our_broker_answers(settings)

    pid = _running_pid(settings)
    if pid is not None:  # already running: only wait until it answers
        if wait_until(ready, timeout):
            return pid
        hint = f"pid {pid} runs but does not answer; see {service.log_file}"
        raise ServiceUnavailableError(service.name, address, hint)
    _refuse_taken_port(settings.kafka_port, "ENVIROSTREAM_KAFKA_PORT", settings)
    _refuse_taken_port(
        settings.kafka_controller_port, "ENVIROSTREAM_KAFKA_CONTROLLER_PORT", settings
    )
    if settings.kafka_secured:
        _refuse_taken_port(settings.kafka_secure_port, "ENVIROSTREAM_KAFKA_SECURE_PORT", settings)
    libs = ensure_kafka_jars(settings)
    properties = _properties_file(settings)
    _log_dir(settings).mkdir(parents=True, exist_ok=True)
    properties.touch(mode=0o600)  # may hold a PLAIN password (infra/kafka_security.py)
    properties.chmod(0o600)
    properties.write_text(render_server_properties(settings))
    _format_storage(settings, libs)
    argv = _java_argv(settings, libs, "kafka.Kafka", str(properties))
    pid = start_service(
        service, argv, ready, address=address, timeout=timeout, cwd=_kafka_dir(settings)
    )
    if settings.kafka_secured:  # ready for the project's clients on the secured listener
        upsert_scram_user(settings)
        wait_for_kafka(settings, timeout=timeout)
    return pid


def stop_kafka(settings: Settings) -> bool:
    """Stop the local broker; True if it was running (False also for an external cluster)."""
    if not settings.uses_local_kafka or _running_pid(settings) is None:
        return False
    return stop_service(kafka_service(settings), timeout=60.0)


def kafka_status(settings: Settings) -> dict[str, Any]:
    """``running``/``pid`` of the local broker, ``bootstrap``, and whether it ``answering``."""
    service = kafka_service(settings)
    if not settings.uses_local_kafka:
        return {
            "running": False,
            "pid": None,
            "bootstrap": settings.bootstrap_servers,
            "answering": _broker_answers(settings),
            "local": False,
        }
    pid = _running_pid(settings)
    return {
        "running": pid is not None,
        "pid": pid,
        "bootstrap": settings.bootstrap_servers,
        "answering": pid is not None and _our_broker_answers(settings),
        "local": True,
        "log": str(service.log_file),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.kafka fetch|start|stop|status`` with the ENVIROSTREAM_* settings."""
    args = sys.argv[1:] if argv is None else argv
    action = args[0] if args else ""
    if action not in ("fetch", "start", "stop", "status"):
        print("usage: python -m infra.kafka fetch|start|stop|status", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        if action == "fetch":
            print(f"Kafka {settings.kafka_version} jars in {ensure_kafka_jars(settings)}")
        elif action == "start":
            pid = start_kafka(settings)
            where = f"pid {pid}" if pid is not None else "external cluster, nothing started"
            print(f"Kafka at {settings.bootstrap_servers}: {where}")
        elif action == "stop":
            print("stopped" if stop_kafka(settings) else "not running")
        else:
            print(json.dumps(kafka_status(settings)))
    except EnviroStreamError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
