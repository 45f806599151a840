"""Kafka client configuration, built in ONE place from the settings (docs/security.md).

Every Kafka client of the project takes its connection settings from here:
:func:`librdkafka_config` for confluent-kafka (producers, admin, DLQ/log readers, lag probe),
:func:`aiokafka_kwargs` for aiokafka (the worker's input consumer and, through
``streams.app``, Faust). A client is given a *target*: the :class:`~core.settings.Settings`
(bootstrap servers plus ``ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL``, SASL credentials, TLS
files), or a plain ``host:port`` string, which means PLAINTEXT (tests, the local broker's
own loopback listener).

>>> librdkafka_config("127.0.0.1:19092")
{'bootstrap.servers': '127.0.0.1:19092'}
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError

from core.errors import ConfigurationError
from core.settings import Settings

__all__ = [
    "KafkaTarget",
    "aiokafka_kwargs",
    "ca_file",
    "client_cert_files",
    "describe_security",
    "handshake_hint",
    "kafka_address",
    "librdkafka_config",
    "local_tls_dir",
    "refusal_hint",
    "sasl_password",
]

# librdkafka's local error codes (confluent-kafka exposes them as "private" attributes).
_AUTHENTICATION = getattr(KafkaError, "_AUTHENTICATION")  # noqa: B009
_SSL = getattr(KafkaError, "_SSL")  # noqa: B009

KafkaTarget = str | Settings
"""Settings (with their security), or a bare ``host:port[,…]`` meaning PLAINTEXT."""


def kafka_address(kafka: KafkaTarget) -> str:
    """The bootstrap servers of ``kafka`` (for messages: never carries a secret)."""
    return kafka if isinstance(kafka, str) else kafka.bootstrap_servers


def local_tls_dir(settings: Settings) -> Path:
    """Where the local broker keeps its generated CA, certificates and keys."""
    return settings.data_dir.resolve() / "kafka" / "tls"


def ca_file(settings: Settings) -> Path | None:
    """The CA clients trust: ``KAFKA_SSL_CA_FILE``, else the local broker's generated CA."""
    if settings.kafka_ssl_ca_file is not None:
        return settings.kafka_ssl_ca_file
    if settings.uses_local_kafka and settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        return local_tls_dir(settings) / "ca.pem"
    return None


def client_cert_files(settings: Settings) -> tuple[Path, Path | None] | None:
    """(certificate, key or None) for TLS client authentication, if any.

    The local broker with ``SSL`` requires a client certificate: unless one is configured,
    clients use the one it generated.
    """
    if settings.kafka_ssl_cert_file is not None:
        return settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file
    if settings.uses_local_kafka and settings.kafka_security_protocol == "SSL":
        tls = local_tls_dir(settings)
        return tls / "client.pem", tls / "client-key.pem"
    return None


def sasl_password(settings: Settings) -> str | None:
    """The SASL password (from ``KAFKA_SASL_PASSWORD`` or the file), None without SASL."""
    if settings.kafka_sasl_password is not None:
        return settings.kafka_sasl_password.get_secret_value()
    path = settings.kafka_sasl_password_file
    if path is None:
        return None
    setting = "ENVIROSTREAM_KAFKA_SASL_PASSWORD_FILE"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(setting, f"cannot read {path}: {exc.strerror}") from None
    if not text or "\n" in text:
        # Never quote the content: it is the password.
        raise ConfigurationError(setting, f"{path} must hold the password on one line")
    return text


def _required_file(path: Path, setting: str) -> str:
    if not path.is_file():
        raise ConfigurationError(setting, f"{path} is not a readable file")
    return str(path)


def librdkafka_config(kafka: KafkaTarget) -> dict[str, Any]:
    """The connection part of a confluent-kafka client's config (callers add their own keys).

    A CA or certificate file that does not exist is a ``ConfigurationError`` naming its
    variable.
    """
    if isinstance(kafka, str):
        return {"bootstrap.servers": kafka}
    settings = kafka
    conf: dict[str, Any] = {"bootstrap.servers": settings.bootstrap_servers}
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return conf
    conf["security.protocol"] = protocol.lower()
    if protocol.startswith("SASL_"):
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
        conf["sasl.username"] = settings.kafka_sasl_username
        conf["sasl.password"] = sasl_password(settings)
    if protocol in ("SSL", "SASL_SSL"):
        ca = ca_file(settings)
        if ca is not None:
            conf["ssl.ca.location"] = _required_file(ca, "ENVIROSTREAM_KAFKA_SSL_CA_FILE")
        cert = client_cert_files(settings)
        if cert is not None:
            conf["ssl.certificate.location"] = _required_file(
                cert[0], "ENVIROSTREAM_KAFKA_SSL_CERT_FILE"
            )
            if cert[1] is not None:
                conf["ssl.key.location"] = _required_file(
                    cert[1], "ENVIROSTREAM_KAFKA_SSL_KEY_FILE"
                )
    return conf


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of aiokafka/Faust clients (None without TLS): verifies the broker's
    certificate and host name against :func:`ca_file` (or the system's CAs)."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    from aiokafka.helpers import create_ssl_context  # the worker's dependency only

    ca = ca_file(settings)
    cert = client_cert_files(settings)
    return create_ssl_context(
        cafile=None if ca is None else _required_file(ca, "ENVIROSTREAM_KAFKA_SSL_CA_FILE"),
        certfile=None
        if cert is None
        else _required_file(cert[0], "ENVIROSTREAM_KAFKA_SSL_CERT_FILE"),
        keyfile=None
        if cert is None or cert[1] is None
        else _required_file(cert[1], "ENVIROSTREAM_KAFKA_SSL_KEY_FILE"),
    )


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of an aiokafka client (``AIOKafkaConsumer(**aiokafka_kwargs(s), …)``)."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = ssl_context(settings)
    if context is not None:
        kwargs["ssl_context"] = context
    if settings.kafka_security_protocol.startswith("SASL_"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = sasl_password(settings)
    return kwargs


def describe_security(kafka: KafkaTarget) -> str:
    """How clients authenticate, for status screens (never the password).

    >>> describe_security("k:9092")
    'PLAINTEXT'
    """
    if isinstance(kafka, str) or not kafka.kafka_secured:
        return "PLAINTEXT"
    protocol = kafka.kafka_security_protocol
    if protocol.startswith("SASL_"):
        return f"{protocol} ({kafka.kafka_sasl_mechanism}, user {kafka.kafka_sasl_username!r})"
    return protocol if client_cert_files(kafka) is None else f"{protocol} (client certificate)"


def refusal_hint(kafka: KafkaTarget, error: KafkaError) -> str | None:
    """What to fix when the broker refused us (authentication or TLS), else None.

    ``error`` is one that librdkafka reported through ``error_cb``.
    """
    code = error.code()
    reason = error.str()
    if code == _AUTHENTICATION:
        who = "" if isinstance(kafka, str) else f" as user {kafka.kafka_sasl_username!r}"
        return (
            f"authentication failed{who} ({reason}); check ENVIROSTREAM_KAFKA_SASL_USERNAME, "
            "ENVIROSTREAM_KAFKA_SASL_PASSWORD(_FILE) and ENVIROSTREAM_KAFKA_SASL_MECHANISM"
        )
    if code == _SSL:
        return (
            f"TLS handshake failed ({reason}); check ENVIROSTREAM_KAFKA_SSL_CA_FILE and the "
            "broker's certificate"
        )
    return None


def handshake_hint(kafka: KafkaTarget, log_line: str) -> str | None:
    """A hint when librdkafka logs that the broker hung up during the first request (a
    PLAINTEXT client at a TLS or SASL listener looks like this), else None. Not a refusal:
    a broker that is starting can do it too, so callers keep waiting and add it to their
    timeout message."""
    if "Disconnected" not in log_line or "APIVERSION_QUERY" not in log_line:
        return None
    protocol = "PLAINTEXT" if isinstance(kafka, str) else kafka.kafka_security_protocol
    return (
        f"the broker closed the connection during the first request, as a TLS or SASL "
        f"listener does to a {protocol} client: check ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL"
    )
