"""docker-compose.yml's Kafka is authenticated and encrypted, consistently with the clients.

Parsed, no Docker needed: every project service reaches Kafka with SASL over TLS through a
listener the broker maps to that protocol and mechanism; TLS files and passwords come from
compose secrets and the uncommitted env file (named in .env.example), never literals. Each
check is also run on a broken copy, to show it can fail.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.settings import load_settings
from tests.unit.test_compose import (
    _SECRET_REF,
    COMPOSE,
    REPO,
    _edit,
    _environment,
    _envirostream_env,
    _services,
    _yaml,
)

_VAR_REF = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::?[?-][^}]*)?\}")
_JAAS_VALUE = re.compile(r'(\w+)="([^"]*)"')


def _secrets(root: Path) -> dict[str, Any]:
    secrets: dict[str, Any] = _yaml(root / COMPOSE).get("secrets") or {}
    return secrets


def _listeners(kafka: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(name -> bind address, advertised address -> name, name -> protocol) of the broker."""
    env = _environment(kafka)

    def pairs(var: str) -> list[tuple[str, str]]:
        return [tuple(i.split("://", 1)) for i in env.get(var, "").split(",") if i]  # type: ignore[misc]

    binds = dict(pairs("KAFKA_LISTENERS"))
    advertised = {address: name for name, address in pairs("KAFKA_ADVERTISED_LISTENERS")}
    protocols = dict(
        item.split(":", 1)
        for item in env.get("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "").split(",")
    )
    return binds, advertised, protocols


def check_clients_secured(root: Path) -> list[str]:
    """Every client uses SASL_SSL/SSL via a listener of that protocol, with a mounted CA."""
    problems = []
    services = _services(root)
    kafka = services["kafka"]
    kafka_env = _environment(kafka)
    _binds, advertised, protocols = _listeners(kafka)
    mechanisms = kafka_env.get("KAFKA_SASL_ENABLED_MECHANISMS", "").split(",")
    for name, service in services.items():
        env = _envirostream_env(service)
        if not env:
            continue
        settings = load_settings(env)
        protocol = settings.kafka_security_protocol
        if protocol not in ("SSL", "SASL_SSL"):
            problems.append(f"{name}: ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL is {protocol}")
            continue
        for address in (settings.kafka_bootstrap or "").split(","):
            listener = advertised.get(address)
            if listener is not None and protocols.get(listener) != protocol:
                problems.append(
                    f"{name}: speaks {protocol} to {address}, but Kafka's listener {listener} "
                    f"is {protocols.get(listener)}"
                )
            if listener is not None and protocol == "SASL_SSL":
                mechanism = settings.kafka_sasl_mechanism
                if mechanism not in mechanisms:
                    problems.append(f"{name}: SASL {mechanism} is not enabled on Kafka")
                key = f"{listener}_{mechanism.replace('-', '_')}_SASL_JAAS_CONFIG"
                jaas = kafka_env.get(f"KAFKA_LISTENER_NAME_{key}", "")
                user = settings.kafka_sasl_username or ""
                if mechanism == "PLAIN" and f"user_{user}=" not in jaas:
                    problems.append(f"{name}: Kafka's {listener} listener has no PLAIN user {user}")
        ca = settings.kafka_ssl_ca_file
        mounted = {f"/run/secrets/{s}" for s in service.get("secrets", [])}
        if ca is None or str(ca) not in mounted:
            problems.append(f"{name}: ENVIROSTREAM_KAFKA_SSL_CA_FILE {ca} is not a mounted secret")
    for listener, kind in protocols.items():
        bind = _binds.get(listener, "")
        if kind == "PLAINTEXT" and not bind.startswith("127.0.0.1:"):
            problems.append(f"kafka: PLAINTEXT listener {listener} binds {bind!r}, not loopback")
    keystore = kafka_env.get("KAFKA_SSL_KEYSTORE_LOCATION", "")
    if keystore not in {f"/run/secrets/{s}" for s in kafka.get("secrets", [])}:
        problems.append(f"kafka: KAFKA_SSL_KEYSTORE_LOCATION {keystore!r} is not a mounted secret")
    return problems


def check_secret_files(root: Path) -> list[str]:
    """Compose secrets are files under secrets/, which git ignores (never committed)."""
    ignored = (root / ".gitignore").read_text().split()
    problems = []
    if "secrets/" not in ignored or ".env" not in ignored:
        problems.append(".gitignore must ignore secrets/ and .env")
    for name, secret in _secrets(root).items():
        if not str(secret.get("file", "")).startswith("./secrets/"):
            problems.append(f"secret {name}: file {secret.get('file')!r} is not under ./secrets/")
    return problems


def check_env_example(root: Path) -> list[str]:
    """Every ${VAR} of the compose file is named in .env.example, with no value."""
    text = (root / COMPOSE).read_text()
    used = set(_VAR_REF.findall(text))
    example = dict(
        line.split("=", 1)
        for line in (root / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    problems = [f".env.example does not name {var}" for var in sorted(used - set(example))]
    problems += [f".env.example gives {var} a value" for var, v in example.items() if v.strip()]
    return problems


def check_jaas_secrets(root: Path) -> list[str]:
    """Passwords in the broker's JAAS lines are ${VAR:?...} references, never literals."""
    problems = []
    for var, value in _environment(_services(root)["kafka"]).items():
        if not var.endswith("JAAS_CONFIG"):
            continue
        for key, secret in _JAAS_VALUE.findall(value):
            if (key.startswith("user_") or key == "password") and not _SECRET_REF.match(secret):
                problems.append(f"kafka: {var} holds a literal password for {key}")
    return problems


CHECKS: list[Callable[[Path], list[str]]] = [
    check_clients_secured,
    check_secret_files,
    check_env_example,
    check_jaas_secrets,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_repository(check: Callable[[Path], list[str]]) -> None:
    assert check(REPO) == []


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    for name in (COMPOSE, ".env.example", ".gitignore"):
        shutil.copy(REPO / name, tmp_path / name)
    assert all(check(tmp_path) == [] for check in CHECKS)
    return tmp_path


def test_fails_on_a_plaintext_client(broken: Path) -> None:
    block = (REPO / COMPOSE).read_text().split("ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL")[1]
    block = "ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL" + block.split("ENVIROSTREAM_CLICKHOUSE_URL")[0]
    _edit(broken, COMPOSE, block, "")  # the five client security settings: PLAINTEXT
    problems = check_clients_secured(broken)
    assert any("worker: ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL is PLAINTEXT" in p for p in problems)


def test_fails_on_a_listener_of_another_protocol(broken: Path) -> None:
    _edit(broken, COMPOSE, "CLIENT:SASL_SSL", "CLIENT:PLAINTEXT")
    problems = check_clients_secured(broken)
    assert any("listener CLIENT is PLAINTEXT" in p for p in problems)
    assert any("PLAINTEXT listener CLIENT binds ':9092'" in p for p in problems)


def test_fails_on_a_mechanism_the_broker_lacks(broken: Path) -> None:
    _edit(
        broken, COMPOSE, "KAFKA_SASL_ENABLED_MECHANISMS: PLAIN", "KAFKA_SASL_ENABLED_MECHANISMS: X"
    )
    assert any("SASL PLAIN is not enabled" in p for p in check_clients_secured(broken))


def test_fails_on_a_ca_that_is_not_mounted(broken: Path) -> None:
    _edit(broken, COMPOSE, "/run/secrets/kafka_ca", "/etc/ca.pem")
    assert any("CA_FILE /etc/ca.pem is not a mounted" in p for p in check_clients_secured(broken))


def test_fails_on_a_literal_jaas_password(broken: Path) -> None:
    ref = '"${KAFKA_SASL_PASSWORD:?set KAFKA_SASL_PASSWORD in .env}"'
    _edit(broken, COMPOSE, f"user_envirostream={ref}", 'user_envirostream="hunter2"')
    assert any("literal password for user_envirostream" in p for p in check_jaas_secrets(broken))


def test_fails_on_a_variable_missing_from_env_example(broken: Path) -> None:
    _edit(broken, ".env.example", "KAFKA_SASL_PASSWORD=\n", "")
    assert check_env_example(broken) == [".env.example does not name KAFKA_SASL_PASSWORD"]


def test_fails_on_secrets_outside_the_ignored_folder(broken: Path) -> None:
    _edit(broken, COMPOSE, "file: ./secrets/kafka-tls/ca.pem", "file: ./ca.pem")
    assert any("secret kafka_ca: file './ca.pem'" in p for p in check_secret_files(broken))
    _edit(broken, ".gitignore", "secrets/\n", "")
    assert ".gitignore must ignore secrets/ and .env" in check_secret_files(broken)
