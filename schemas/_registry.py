"""A tiny client of a Confluent-compatible Schema Registry: the two calls the codec needs.

- ``POST /subjects/{subject}/versions`` with ``{"schema": "<json>"}`` registers a schema
  (idempotent on the registry side) and answers ``{"id": n}``;
- ``GET /schemas/ids/{id}`` answers ``{"schema": "<json>"}``.

Both answers are cached for the life of the client: a schema id never changes meaning.
Errors: the registry cannot be reached or answers 5xx → ``ServiceUnavailableError`` (retry,
do not dead-letter); it refuses a request (4xx) → ``SchemaRegistryError`` with ``status``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from core.errors import EnviroStreamError, ServiceUnavailableError

__all__ = ["SchemaRegistryClient", "SchemaRegistryError"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_SERVICE = "schema registry"


class SchemaRegistryError(EnviroStreamError):
    """The registry refused a request; ``status`` is the HTTP status (404 = unknown id)."""

    def __init__(self, message: str, *, status: int, error_code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class SchemaRegistryClient:
    """Register schemas under a subject and fetch them by id, with caches."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._ids: dict[tuple[str, str], int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """The id of ``schema`` under ``subject``, registering it on first use."""
        text = json.dumps(schema, separators=(",", ":"), sort_keys=True)
        key = (subject, text)
        schema_id = self._ids.get(key)
        if schema_id is None:
            path = f"/subjects/{urllib.parse.quote(subject, safe='')}/versions"
            reply = self._call("POST", path, {"schema": text})
            schema_id = int(reply["id"])
            self._ids[key] = schema_id
            self._schemas.setdefault(schema_id, schema)
        return schema_id

    def schema(self, schema_id: int) -> dict[str, Any]:
        """The schema registered under ``schema_id`` (``SchemaRegistryError`` 404 if none)."""
        schema = self._schemas.get(schema_id)
        if schema is None:
            reply = self._call("GET", f"/schemas/ids/{schema_id}")
            schema_type = reply.get("schemaType", "AVRO")
            if schema_type != "AVRO":
                msg = f"schema id {schema_id} is a {schema_type} schema, not AVRO"
                raise SchemaRegistryError(msg, status=200)
            parsed = json.loads(reply["schema"])
            if not isinstance(parsed, dict):
                msg = f"schema id {schema_id} is not an Avro record schema: {reply['schema']!r}"
                raise SchemaRegistryError(msg, status=200)
            schema = parsed
            self._schemas[schema_id] = schema
        return schema

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": _CONTENT_TYPE, "Accept": _CONTENT_TYPE},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail, code = _error_detail(exc)
            if exc.code >= 500:
                hint = f"{method} {path} answered {exc.code}: {detail}"
                raise ServiceUnavailableError(_SERVICE, self.url, hint) from exc
            msg = f"schema registry {self.url}: {method} {path} answered {exc.code}: {detail}"
            raise SchemaRegistryError(msg, status=exc.code, error_code=code) from exc
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused, a non-JSON reply
            hint = (
                f"{method} {path} failed ({type(exc).__name__}: {exc}); "
                "check ENVIROSTREAM_SCHEMA_REGISTRY_URL or unset it to use single-object encoding"
            )
            raise ServiceUnavailableError(_SERVICE, self.url, hint) from exc


def _error_detail(exc: urllib.error.HTTPError) -> tuple[str, int | None]:
    """The registry's ``{"error_code": n, "message": "..."}`` body, when it sent one."""
    try:
        body = json.loads(exc.read() or b"{}")
    except (OSError, ValueError):
        return str(exc.reason), None
    if isinstance(body, dict) and "message" in body:
        code = body.get("error_code")
        return str(body["message"]), int(code) if isinstance(code, int) else None
    return str(exc.reason), None
