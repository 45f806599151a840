"""The local broker's secured listener: TLS material, listener properties and SASL users.

When ``ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL`` is not PLAINTEXT, ``infra up`` starts the local
broker with one more listener, ``CLIENT`` on ``127.0.0.1:<KAFKA_SECURE_PORT>``, speaking that
protocol; the project's clients use it (``Settings.bootstrap_servers``). The broker's own
listeners (inter-broker ``PLAINTEXT`` on ``KAFKA_PORT``, ``CONTROLLER``) stay PLAINTEXT on
loopback. TLS material is generated once with ``cryptography`` under
``<data_dir>/kafka/tls``: a CA, a broker certificate for ``localhost``/``127.0.0.1`` (a PEM
keystore) and, for ``SSL``, a client certificate (the broker requires one). SCRAM users are
upserted through the loopback listener after every start, so the configured password is
the broker's; PLAIN users live in the listener's JAAS line of ``server.properties`` (0600).

``python -m infra.kafka_security DIR [HOST ...]`` writes the same TLS set for other brokers
(docker-compose.yml: ``python -m infra.kafka_security secrets/kafka-tls kafka localhost``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from core.errors import ConfigurationError, EnviroStreamError
from core.settings import Settings
from topics.kafka_config import local_tls_dir, sasl_password

__all__ = [
    "TlsFiles",
    "ensure_local_tls",
    "generate_tls",
    "secure_listener_properties",
    "upsert_scram_user",
]

LISTENER = "CLIENT"
_SCRAM_ITERATIONS = 8192


@dataclass(frozen=True)
class TlsFiles:
    """The PEM files of a generated CA, broker keystore and client certificate."""

    ca: Path
    broker_keystore: Path  # private key + certificate chain: Kafka's `ssl.keystore.type=PEM`
    client_cert: Path
    client_key: Path


def _tls_files(directory: Path) -> TlsFiles:
    return TlsFiles(
        directory / "ca.pem",
        directory / "broker-keystore.pem",
        directory / "client.pem",
        directory / "client-key.pem",
    )


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Name, rsa.RSAPrivateKey] | None,
    *,
    hosts: Sequence[str] = (),
    now: dt.datetime,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, signer = issuer if issuer is not None else (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        purposes = [ExtendedKeyUsageOID.CLIENT_AUTH]
        if hosts:
            purposes.append(ExtendedKeyUsageOID.SERVER_AUTH)
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_general_name(h) for h in hosts]), critical=False
            )
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, mode)


def generate_tls(
    directory: Path,
    hosts: Sequence[str] = ("localhost", "127.0.0.1"),
    now: dt.datetime | None = None,
) -> TlsFiles:
    """Write a new CA, a broker keystore for ``hosts`` (names or IPs) and a client certificate.

    Private keys are written 0600 and never encrypted (loopback test/dev material).
    """
    now = now or dt.datetime.now(dt.UTC)
    directory.mkdir(parents=True, exist_ok=True)
    files = _tls_files(directory)
    ca_key = _key()
    ca = _certificate("EnviroStream local Kafka CA", ca_key, None, now=now)
    ca_pem = ca.public_bytes(serialization.Encoding.PEM)
    broker_key = _key()
    broker = _certificate(hosts[0], broker_key, (ca.subject, ca_key), hosts=hosts, now=now)
    client_key = _key()
    client = _certificate("envirostream-client", client_key, (ca.subject, ca_key), now=now)
    _write(
        files.broker_keystore,
        _key_pem(broker_key) + broker.public_bytes(serialization.Encoding.PEM) + ca_pem,
        0o600,
    )
    _write(files.client_key, _key_pem(client_key), 0o600)
    _write(files.client_cert, client.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(files.ca, ca_pem, 0o644)  # last: its presence means the set is complete
    return files


def ensure_local_tls(settings: Settings) -> TlsFiles:
    """The local broker's TLS files, generated on first use under ``<data_dir>/kafka/tls``."""
    directory = local_tls_dir(settings)
    files = _tls_files(directory)
    if all(p.is_file() for p in (files.ca, files.broker_keystore, files.client_cert)):
        return files
    return generate_tls(directory)


def _jaas_quote(value: str) -> str:
    """``value`` as a quoted JAAS option, escaped for a ``.properties`` file (which Java reads
    as ISO-8859-1 with backslash escapes)."""
    jaas = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    escaped = jaas.replace("\\", "\\\\")
    return "".join(c if 0x20 <= ord(c) < 0x7F else f"\\u{ord(c):04x}" for c in escaped)


def secure_listener_properties(settings: Settings, values: dict[str, str]) -> dict[str, str]:
    """``values`` (a PLAINTEXT broker's properties) plus the secured ``CLIENT`` listener.

    Unchanged when the settings ask for PLAINTEXT. May carry a PLAIN password: the caller
    writes the file 0600.
    """
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return values
    address = f"{LISTENER}://127.0.0.1:{settings.kafka_secure_port}"
    out = dict(values)
    out["listeners"] = f"{values['listeners']},{address}"
    out["advertised.listeners"] = f"{values['advertised.listeners']},{address}"
    out["listener.security.protocol.map"] += f",{LISTENER}:{protocol}"
    prefix = f"listener.name.{LISTENER.lower()}."
    if protocol in ("SSL", "SASL_SSL"):
        files = ensure_local_tls(settings)
        out[prefix + "ssl.keystore.type"] = "PEM"
        out[prefix + "ssl.keystore.location"] = str(files.broker_keystore)
        out[prefix + "ssl.truststore.type"] = "PEM"
        out[prefix + "ssl.truststore.location"] = str(files.ca)
        # SSL alone authenticates clients by certificate; with SASL the password does.
        out[prefix + "ssl.client.auth"] = "required" if protocol == "SSL" else "none"
    if protocol.startswith("SASL_"):
        mechanism = settings.kafka_sasl_mechanism
        out[prefix + "sasl.enabled.mechanisms"] = mechanism
        if mechanism == "PLAIN":
            user = settings.kafka_sasl_username or ""
            if not re.fullmatch(r"[A-Za-z0-9._@-]+", user):
                # It becomes a JAAS option name (user_<name>) in server.properties.
                msg = (
                    f"the local broker's PLAIN user must be letters, digits and . _ @ -, "
                    f"got {user!r}"
                )
                raise ConfigurationError(setting="ENVIROSTREAM_KAFKA_SASL_USERNAME", message=msg)
            password = sasl_password(settings) or ""
            module = "org.apache.kafka.common.security.plain.PlainLoginModule"
            line = f"{module} required user_{user}={_jaas_quote(password)};"
        else:
            line = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        out[f"{prefix}{mechanism.lower()}.sasl.jaas.config"] = line
    return out


class ScramSetupError(EnviroStreamError):
    """The local broker did not accept the SCRAM user of the settings."""


def upsert_scram_user(settings: Settings, timeout: float = 30.0) -> bool:
    """Create or update the SCRAM user of the settings on the local broker; False if none.

    Goes through the broker's loopback PLAINTEXT listener (``KAFKA_PORT``): the secured one
    cannot be used before the user exists.
    """
    mechanism = settings.kafka_sasl_mechanism
    if not settings.kafka_security_protocol.startswith("SASL_") or mechanism == "PLAIN":
        return False
    password = sasl_password(settings) or ""
    user = settings.kafka_sasl_username or ""
    scram = (
        ScramMechanism.SCRAM_SHA_512
        if mechanism == "SCRAM-SHA-512"
        else (ScramMechanism.SCRAM_SHA_256)
    )
    upsert = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(scram, _SCRAM_ITERATIONS), password.encode("utf-8")
    )
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{settings.kafka_port}"})
    try:
        admin.alter_user_scram_credentials([upsert], request_timeout=timeout)[user].result(
            timeout=timeout
        )
    except KafkaException as exc:
        msg = f"the local broker refused the SCRAM user {user!r} ({mechanism}): {exc}"
        raise ScramSetupError(msg) from None
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m infra.kafka_security DIR [HOST ...]``: a CA and a broker keystore for HOSTs."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print("usage: python -m infra.kafka_security DIR [HOST ...]", file=sys.stderr)
        return 2
    hosts = args[1:] or ["localhost", "127.0.0.1"]
    files = generate_tls(Path(args[0]), hosts)
    print(
        f"CA {files.ca}; broker keystore (key + chain, 0600) {files.broker_keystore} for "
        f"{', '.join(hosts)}; client certificate {files.client_cert}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
