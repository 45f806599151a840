"""The pipeline through an authenticated, encrypted Kafka listener (SASL_SSL, SCRAM-SHA-512).

The local broker is started with its secured listener (``infra.kafka_security``): a CA and a
broker certificate for 127.0.0.1 generated in this module's temp dir, the SCRAM user of the
settings. Then, through the CLI and a real worker, all with the secured settings: topics
created, a seeded fleet simulated, every reading aggregated into the real store. A client
with a wrong password is refused with an error naming authentication; a PLAINTEXT client
gets nothing from the secured listener; the password shows in no output and no log.
"""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaException

from core.errors import ServiceRefusedError, ServiceUnavailableError
from core.settings import Settings, load_settings
from infra.harness import start_services, stop_services
from infra.processes import free_port
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import (
    REPO,
    WorkerProcess,
    make_settings,
    service_env,
    wait_for_worker,
)
from topics import READINGS
from topics.kafka_config import local_tls_dir
from topics.producer import wait_for_broker

USER = "envirostream-app"
# Unique, so finding it anywhere is a leak, never a coincidence.
PASSWORD = f"Kafka-{uuid.uuid4().hex}"
DEVICES = 20
SECONDS = 30


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    tmp = tmp_path_factory.mktemp("sasl")
    settings = make_settings(
        tmp,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=USER,
        kafka_sasl_password=PASSWORD,
        simulator_metrics_port=0,
        log_level="INFO",
    )
    try:
        start_services(settings)
    except Exception as exc:
        pytest.fail(f"could not start Kafka with a SASL_SSL listener and the store: {exc}")
    yield settings
    stop_services(settings)


def cli(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envirostream", *args],
        env=service_env(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def with_password(settings: Settings, password: str) -> Settings:
    values = settings.model_dump(exclude={"kafka_sasl_password"})
    return load_settings({}, **values, kafka_sasl_password=password)


def test_the_pipeline_runs_through_sasl_ssl(
    secured: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = secured
    tls = local_tls_dir(settings)
    assert tls.is_relative_to(settings.data_dir.resolve())  # generated in this test's tmp dir
    keystore = tls / "broker-keystore.pem"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert settings.bootstrap_servers == f"127.0.0.1:{settings.kafka_secure_port}"
    server_properties = (settings.data_dir / "kafka" / "server.properties").read_text()
    assert f"CLIENT://127.0.0.1:{settings.kafka_secure_port}" in server_properties
    assert "CLIENT:SASL_SSL" in server_properties
    assert PASSWORD not in server_properties  # SCRAM: the broker keeps only a salted hash

    outputs: dict[str, str] = {}
    created = cli(settings, "topics", "create")
    outputs["topics create"] = created.stdout + created.stderr
    assert created.returncode == 0, outputs["topics create"]
    assert READINGS in created.stdout

    simulated = cli(
        settings,
        "simulate",
        f"--devices={DEVICES}",
        "--rate=1",
        "--speedup=0",
        "--start=2026-01-01T00:00:00Z",
        f"--duration={SECONDS}",
        "--seed=7",
    )
    outputs["simulate"] = simulated.stdout + simulated.stderr
    assert simulated.returncode == 0, outputs["simulate"]
    sent = re.search(r"sent (\d+) readings .* delivered (\d+), undelivered 0", simulated.stdout)
    assert sent is not None, simulated.stdout
    produced = int(sent.group(1))
    assert produced == int(sent.group(2)) and produced >= DEVICES * SECONDS

    client = get_client(settings)

    def count(sql: str) -> int:
        return int(client.command(sql))  # type: ignore[arg-type]

    ClickHouseSink(client, settings).setup()  # idempotent; the worker does it too
    log = tmp_path_factory.mktemp("logs") / "worker.log"
    worker = WorkerProcess(settings, log)
    try:
        wait_for_worker(
            lambda: count("SELECT count() FROM readings FINAL") >= produced,
            180,
            f"{produced} readings stored",
            worker,
        )
        # Every reading lands in exactly one closed window (idle partitions close theirs).
        wait_for_worker(
            lambda: count("SELECT sum(count) FROM aggregates FINAL") >= produced,
            120,
            f"aggregates covering {produced} readings",
            worker,
        )
        status = cli(settings, "status")
        outputs["status"] = status.stdout + status.stderr
        assert status.returncode == 0, outputs["status"]
    finally:
        worker.stop()
    infra = cli(settings, "infra", "status")
    outputs["infra status"] = infra.stdout + infra.stderr
    assert infra.returncode == 0, outputs["infra status"]
    assert "SASL_SSL (SCRAM-SHA-512" in infra.stdout

    assert client.command("SELECT count() FROM readings FINAL") == produced
    assert client.command("SELECT uniqExact(reading_id) FROM readings") == produced
    assert client.command("SELECT uniqExact(device_id) FROM readings") == DEVICES
    assert client.command("SELECT sum(count) FROM aggregates FINAL") == produced

    outputs["worker log"] = log.read_text(errors="replace")
    # (librdkafka may log "SASL authentication error: … transport failure" for a reader it
    # closed mid-handshake; a refusal would read "Authentication failed".)
    assert "authentication failed" not in outputs["worker log"].lower()
    for name, text in outputs.items():
        assert PASSWORD not in text, f"the Kafka password appears in the output of {name}"


def test_a_wrong_password_is_refused_naming_authentication(
    secured: Settings, tmp_path_factory: pytest.TempPathFactory
) -> None:
    wrong = with_password(secured, "not-the-password")
    with pytest.raises(ServiceRefusedError) as refused:
        wait_for_broker(wrong, timeout=30)
    message = str(refused.value)
    assert "refused the connection: authentication failed" in message and USER in message
    assert "ENVIROSTREAM_KAFKA_SASL_PASSWORD" in message
    assert "not-the-password" not in message

    # A worker with the wrong password stops at start and says why.
    log = tmp_path_factory.mktemp("refused") / "worker.log"
    worker = WorkerProcess(wrong.model_copy(update={"metrics_port": free_port()}), log)
    try:
        code = worker.proc.wait(timeout=90)
    finally:
        worker.stop()
    text = log.read_text(errors="replace")
    assert code != 0, text
    assert "authentication failed" in text, text
    assert "not-the-password" not in text and PASSWORD not in text


def test_a_plaintext_client_cannot_read_the_secured_listener(secured: Settings) -> None:
    # The right credentials answer (so what follows is the protocol, not a dead broker)...
    wait_for_broker(secured, timeout=30)
    # ... and our own clients, left PLAINTEXT, say what is likely wrong.
    with pytest.raises(ServiceUnavailableError) as unanswered:
        wait_for_broker(secured.bootstrap_servers, timeout=5)
    assert "check ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL" in str(unanswered.value)
    plain = Consumer(
        {
            "bootstrap.servers": secured.bootstrap_servers,
            "group.id": f"plain-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "log_level": 0,
        }
    )
    try:
        with pytest.raises(KafkaException):
            plain.list_topics(timeout=5)
        plain.subscribe([READINGS])
        got = plain.consume(num_messages=10, timeout=5)
        assert [m for m in got if m.error() is None] == []
    finally:
        plain.close()
