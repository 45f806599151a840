"""The schema registry part of :class:`core.settings.Settings`: where the Confluent-compatible
Schema Registry is and how to authenticate to it (``ENVIROSTREAM_SCHEMA_REGISTRY_*``).

The URL is a :class:`~core.secrets.SecretUrl` (``https://user:password@host`` prints with the
password redacted); the password may instead sit in a file (``..._BASIC_AUTH_FILE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from core.errors import ConfigurationError
from core.secrets import SecretUrl

__all__ = ["RegistrySettings", "registry_client_config"]


class RegistrySettings(BaseSettings):
    """``ENVIROSTREAM_SCHEMA_REGISTRY_*``: the registry's URL, basic auth and TLS files."""

    # --- schemas -----------------------------------------------------------------------
    schema_registry_url: SecretUrl | None = Field(
        default=None,
        description="http(s)://[user:password@]host:port of a Confluent-compatible Schema "
        "Registry; set = Confluent wire format. See docs/security.md.",
    )
    schema_registry_basic_auth_file: Path | None = Field(
        default=None,
        description="File holding `user:password` for the registry's basic auth (instead "
        "of credentials in the URL).",
    )
    schema_registry_ca_file: Path | None = Field(
        default=None,
        description="CA bundle (PEM) that signs the registry's TLS certificate; unset = "
        "the system's CAs.",
    )
    schema_registry_cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS to the registry."
    )
    schema_registry_key_file: Path | None = Field(
        default=None,
        description="Private key (PEM) of `SCHEMA_REGISTRY_CERT_FILE`; unset = in the cert file.",
    )

    @model_validator(mode="after")
    def _check_registry_auth(self) -> RegistrySettings:
        if self.schema_registry_key_file is not None and self.schema_registry_cert_file is None:
            msg = "ENVIROSTREAM_SCHEMA_REGISTRY_KEY_FILE is set without ..._CERT_FILE"
            raise ValueError(msg)
        url = self.schema_registry_url
        if self.schema_registry_basic_auth_file is not None and url is not None:
            authority = url.get_secret_value().split("://", 1)[-1].split("/", 1)[0]
            if "@" in authority:
                msg = (
                    "ENVIROSTREAM_SCHEMA_REGISTRY_BASIC_AUTH_FILE is set but "
                    "ENVIROSTREAM_SCHEMA_REGISTRY_URL carries credentials too; keep one"
                )
                raise ValueError(msg)
        return self


def registry_client_config(settings: RegistrySettings) -> dict[str, Any]:
    """The ``confluent_kafka.schema_registry.SchemaRegistryClient`` config of ``settings``.

    Files are read (or checked) now, so a missing one is a ``ConfigurationError`` naming its
    variable. Without a registry URL: ``{}``.

    >>> registry_client_config(RegistrySettings())
    {}
    >>> conf = registry_client_config(
    ...     RegistrySettings(schema_registry_url=SecretUrl("https://u:pw@sr:8081")))
    >>> sorted(conf), conf["url"]
    (['url'], 'https://u:pw@sr:8081')
    """
    if settings.schema_registry_url is None:
        return {}
    conf: dict[str, Any] = {"url": settings.schema_registry_url.get_secret_value()}
    if settings.schema_registry_basic_auth_file is not None:
        conf["basic.auth.user.info"] = _read_user_info(settings.schema_registry_basic_auth_file)
    files = {
        "ssl.ca.location": ("CA_FILE", settings.schema_registry_ca_file),
        "ssl.certificate.location": ("CERT_FILE", settings.schema_registry_cert_file),
        "ssl.key.location": ("KEY_FILE", settings.schema_registry_key_file),
    }
    for key, (suffix, path) in files.items():
        if path is None:
            continue
        if not path.is_file():
            setting = f"ENVIROSTREAM_SCHEMA_REGISTRY_{suffix}"
            raise ConfigurationError(setting, f"{path} is not a readable file")
        conf[key] = str(path)
    return conf


def _read_user_info(path: Path) -> str:
    setting = "ENVIROSTREAM_SCHEMA_REGISTRY_BASIC_AUTH_FILE"
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigurationError(setting, f"cannot read {path}: {exc.strerror}") from None
    user, colon, password = text.partition(":")
    if not colon or not user or not password or "\n" in text:
        # Never quote the content: it is (or contains) the password.
        raise ConfigurationError(setting, f"{path} must hold one line `user:password`")
    return text
