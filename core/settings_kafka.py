"""The Kafka transport-security part of :class:`core.settings.Settings`
(``ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL``, ``..._SASL_*``, ``..._SSL_*``).

How every project client reaches Kafka: in the clear (``PLAINTEXT``, the default), over TLS
(``SSL``, optionally with a client certificate), or with SASL (SCRAM or PLAIN) over TLS
(``SASL_SSL``) or in the clear (``SASL_PLAINTEXT``). The password is a ``SecretStr`` or a
file, so it never prints. Client configs are built from these fields in one place,
:mod:`topics.kafka_config`. An invalid combination stops the process at start, naming the
variable to fix (docs/security.md, "Kafka"); files are checked when the first client is
built (at start too), as the registry's are, so settings naming a container's paths can be
validated elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings

__all__ = ["KafkaSecuritySettings", "SecurityProtocol"]

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
_VAR = "ENVIROSTREAM_KAFKA_"


class KafkaSecuritySettings(BaseSettings):
    """``ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL``, SASL credentials and TLS files."""

    # --- Kafka transport security (docs/security.md) -----------------------------------
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="How clients reach Kafka: PLAINTEXT, SSL (TLS, optional client "
        "certificate), SASL_SSL (SASL over TLS) or SASL_PLAINTEXT. With the local broker, "
        "anything but PLAINTEXT adds a secured listener on KAFKA_SECURE_PORT. See "
        "docs/security.md.",
    )
    kafka_secure_port: int = Field(
        default=19094,
        ge=1,
        le=65535,
        description="Port of the local broker's secured listener (used when "
        "KAFKA_SECURITY_PROTOCOL is not PLAINTEXT; KAFKA_PORT stays a loopback PLAINTEXT "
        "listener for the broker itself).",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512",
        description="SASL mechanism of SASL_SSL/SASL_PLAINTEXT: SCRAM-SHA-512, "
        "SCRAM-SHA-256 or PLAIN.",
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL user name (required with SASL_*)."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None,
        description="SASL password (never printed); or use KAFKA_SASL_PASSWORD_FILE.",
    )
    kafka_sasl_password_file: Path | None = Field(
        default=None, description="File holding the SASL password (one line)."
    )
    kafka_ssl_ca_file: Path | None = Field(
        default=None,
        description="CA bundle (PEM) that signs the brokers' certificates; unset = the "
        "system's CAs (the local broker: its generated `<data dir>/kafka/tls/ca.pem`).",
    )
    kafka_ssl_cert_file: Path | None = Field(
        default=None,
        description="Client certificate (PEM) for TLS client authentication (SSL, SASL_SSL); "
        "the local broker with SSL: its generated client certificate.",
    )
    kafka_ssl_key_file: Path | None = Field(
        default=None,
        description="Private key (PEM, unencrypted) of KAFKA_SSL_CERT_FILE; unset = in the "
        "cert file.",
    )

    @field_validator("kafka_sasl_username", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and value.strip() == "" else value

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSecuritySettings:
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        tls = protocol in ("SSL", "SASL_SSL")
        has_password = self.kafka_sasl_password is not None
        has_file = self.kafka_sasl_password_file is not None
        if sasl:
            if self.kafka_sasl_username is None:
                msg = f"{_VAR}SASL_USERNAME is required with {_VAR}SECURITY_PROTOCOL={protocol}"
                raise ValueError(msg)
            if has_password == has_file:
                msg = (
                    f"{_VAR}SASL_PASSWORD or {_VAR}SASL_PASSWORD_FILE (exactly one) is "
                    f"required with {_VAR}SECURITY_PROTOCOL={protocol}"
                    + (" (both are set)" if has_password else "")
                )
                raise ValueError(msg)
        elif self.kafka_sasl_username is not None or has_password or has_file:
            msg = (
                f"{_VAR}SASL_USERNAME/_PASSWORD are set but {_VAR}SECURITY_PROTOCOL is "
                f"{protocol}: set it to SASL_SSL (or SASL_PLAINTEXT) so they are used"
            )
            raise ValueError(msg)
        ssl_files = {
            "SSL_CA_FILE": self.kafka_ssl_ca_file,
            "SSL_CERT_FILE": self.kafka_ssl_cert_file,
            "SSL_KEY_FILE": self.kafka_ssl_key_file,
        }
        given = [name for name, path in ssl_files.items() if path is not None]
        if given and not tls:
            msg = (
                f"{_VAR}{given[0]} is set but {_VAR}SECURITY_PROTOCOL is {protocol} (no TLS): "
                "set it to SSL or SASL_SSL"
            )
            raise ValueError(msg)
        if self.kafka_ssl_key_file is not None and self.kafka_ssl_cert_file is None:
            msg = f"{_VAR}SSL_KEY_FILE is set without {_VAR}SSL_CERT_FILE"
            raise ValueError(msg)
        return self

    @property
    def kafka_secured(self) -> bool:
        """True unless clients speak PLAINTEXT to Kafka."""
        return self.kafka_security_protocol != "PLAINTEXT"
