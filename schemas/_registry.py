"""The codec's view of a Confluent-compatible Schema Registry: the two calls it needs, made
with ``confluent_kafka.schema_registry.SchemaRegistryClient`` (basic auth, TLS, client certs).

- ``register(subject, schema)`` registers a schema (idempotent on the registry side) and
  answers its id;
- ``schema(id)`` answers the Avro schema registered under that id.

Both answers are cached for the life of the client: a schema id never changes meaning.
Errors: the registry cannot be reached or answers 5xx → ``ServiceUnavailableError`` (retry,
do not dead-letter); it refuses a request (4xx) → ``SchemaRegistryError`` with ``status``.
Messages show the URL with its password redacted.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from pydantic import SecretStr

from core.errors import ConfigurationError, EnviroStreamError, ServiceUnavailableError
from core.secrets import redact_url
from core.settings_registry import RegistrySettings, registry_client_config

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import Schema

__all__ = ["SchemaRegistryClient", "SchemaRegistryError"]

_SERVICE = "schema registry"
_SETTING = "ENVIROSTREAM_SCHEMA_REGISTRY_URL"


class SchemaRegistryError(EnviroStreamError):
    """The registry refused a request; ``status`` is the HTTP status (404 = unknown id)."""

    def __init__(self, message: str, *, status: int, error_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class SchemaRegistryClient:
    """Register schemas under a subject and fetch them by id, with caches.

    ``url`` may be a plain string or a ``SecretStr``; ``conf`` adds the Confluent client's
    options (``basic.auth.user.info``, ``ssl.ca.location``, ``ssl.certificate.location``,
    ``ssl.key.location``): see :meth:`from_settings`.
    """

    def __init__(
        self, url: str | SecretStr, *, timeout: float = 10.0, conf: dict[str, Any] | None = None
    ) -> None:
        secret = url.get_secret_value() if isinstance(url, SecretStr) else url
        self.url = redact_url(secret.rstrip("/"))  # what messages show
        self.timeout = timeout
        # No retries here: the caller retries a ServiceUnavailableError (as before).
        bare, user_info = _split_user_info(secret.rstrip("/"))
        config = {**(conf or {}), "url": bare, "timeout": timeout}
        if user_info:
            # Sent as basic auth, never in the URL: the HTTP client logs the URLs it requests.
            if "basic.auth.user.info" in config:
                msg = "carries credentials and a basic auth file is set too; keep one"
                raise ConfigurationError(_SETTING, msg)
            config["basic.auth.user.info"] = user_info
        config.setdefault("max.retries", 0)
        # Imported here: it pulls in httpx2, authlib and cryptography (~0.2 s), which
        # processes without a registry never need.
        from confluent_kafka.schema_registry import SchemaRegistryClient as _ConfluentClient

        try:
            self._client = _ConfluentClient(config)
        except (ValueError, TypeError, OSError) as exc:  # bad auth/TLS options or files
            raise ConfigurationError(_SETTING, f"{redact_url(str(exc))}") from None
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    @classmethod
    def from_settings(cls, settings: RegistrySettings) -> SchemaRegistryClient | None:
        """The client of ``ENVIROSTREAM_SCHEMA_REGISTRY_*``; ``None`` when no URL is set."""
        conf = registry_client_config(settings)
        if not conf:
            return None
        return cls(conf.pop("url"), conf=conf)

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """The id of ``schema`` under ``subject``, registering it on first use."""
        text = json.dumps(schema, separators=(",", ":"), sort_keys=True)
        key = (subject, text)
        schema_id = self._ids.get(key)
        if schema_id is None:
            from confluent_kafka.schema_registry import Schema

            path = f"/subjects/{subject}/versions"
            schema_id = int(
                self._call(
                    "POST", path, self._client.register_schema, subject, Schema(text, "AVRO")
                )
            )
            self._ids[key] = schema_id
            self._schemas.setdefault(schema_id, schema)
        return schema_id

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema registered under ``schema_id`` (``SchemaRegistryError`` 404 if none)."""
        schema = self._schemas.get(schema_id)
        if schema is None:
            path = f"/schemas/ids/{schema_id}"
            reply: Schema = self._call("GET", path, self._client.get_schema, schema_id)
            schema_type = reply.schema_type or "AVRO"
            if schema_type != "AVRO":
                msg = f"schema id {schema_id} is a {schema_type} schema, not AVRO"
                raise SchemaRegistryError(msg, status=200)
            try:
                parsed = json.loads(reply.schema_str or "")
            except ValueError as exc:
                msg = f"schema id {schema_id} is not JSON: {reply.schema_str!r}"
                raise SchemaRegistryError(msg, status=200) from exc
            if not isinstance(parsed, dict):
                msg = f"schema id {schema_id} is not an Avro record schema: {reply.schema_str!r}"
                raise SchemaRegistryError(msg, status=200)
            schema = parsed
            self._schemas[schema_id] = schema
        return schema

    def _call(self, method: str, path: str, call: Any, *args: Any) -> Any:
        from confluent_kafka.schema_registry.error import SchemaRegistryError as _ConfluentError

        try:
            return call(*args)
        except _ConfluentError as exc:
            status = int(exc.http_status_code)
            detail = exc.error_message
            if status >= 500:
                hint = f"{method} {path} answered {status}: {detail}"
                raise ServiceUnavailableError(_SERVICE, self.url, hint) from None
            msg = f"schema registry {self.url}: {method} {path} answered {status}: {detail}"
            code = (
                exc.error_code if isinstance(exc.error_code, int) and exc.error_code >= 0 else None
            )
            raise SchemaRegistryError(msg, status=status, error_code=code) from None
        except Exception as exc:  # the HTTP client's transport errors: refused, TLS, timeout
            if isinstance(exc, EnviroStreamError):
                raise
            hint = (
                f"{method} {path} failed ({type(exc).__name__}: {redact_url(str(exc))}); "
                f"check {_SETTING} (and its _BASIC_AUTH_FILE, _CA_FILE, _CERT_FILE, _KEY_FILE) "
                "or unset it to use single-object encoding"
            )
            raise ServiceUnavailableError(_SERVICE, self.url, hint) from None


def _split_user_info(url: str) -> tuple[str, str]:
    """``url`` without its ``user:password@``, and that ``user:password`` (unquoted).

    >>> _split_user_info("https://svc:p%40ss@sr:8081/base")
    ('https://sr:8081/base', 'svc:p@ss')
    >>> _split_user_info("http://sr:8081")
    ('http://sr:8081', '')
    """
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, ""
    user_info, _, host = parts.netloc.rpartition("@")
    user, _, password = user_info.partition(":")
    bare = urlunsplit(parts._replace(netloc=host))
    return bare, f"{unquote(user)}:{unquote(password)}"
