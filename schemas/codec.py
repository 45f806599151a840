"""Avro encoding of the pipeline's records, in batches, with fastavro.

Wire formats:
- Avro single-object encoding (default): ``C3 01`` + 8-byte little-endian CRC-64-AVRO
  fingerprint of the writer schema's Parsing Canonical Form + the Avro body. The writer
  schema is found by fingerprint among the known schemas (``schemas/*.avsc`` and any
  registered with :meth:`AvroCodec.register`), then resolved to the current reader schema.
- Confluent wire format (when a Schema Registry URL is given): ``00`` + 4-byte big-endian
  schema id + body; ids are registered/fetched over the registry's REST API and cached.

Timestamps travel as int epoch milliseconds (the logicalType is dropped on the hot path:
it does not change the bytes nor the fingerprint). Enums are strings.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import urllib.request
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint as avro_fingerprint
from fastavro.schema import to_parsing_canonical_form
from fastavro.validation import validate

from envirostream.errors import EnviroStreamError

__all__ = [
    "SCHEMA_NAMES",
    "AvroCodec",
    "CorruptRecordError",
    "DecodeError",
    "EncodeError",
    "NotAvroError",
    "UnknownSchemaError",
    "canonical_form",
    "fingerprint",
    "load_schema",
]

SCHEMA_NAMES = ("UniversalSensorReading", "WindowAggregate", "AnomalyScore", "Alert")
SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


class DecodeError(EnviroStreamError):
    """Bytes that cannot be read as a record; ``reason`` is short and machine-friendly."""

    reason = "decode_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class NotAvroError(DecodeError):
    reason = "not_avro"


class UnknownSchemaError(DecodeError):
    reason = "unknown_schema"


class CorruptRecordError(DecodeError):
    reason = "corrupt_body"


class EncodeError(EnviroStreamError):
    """A record that does not match its schema."""


# -- schema files, canonical form, fingerprint --------------------------------------------
def load_schema(name: str) -> dict[str, Any]:
    """The current schema ``name`` as a JSON dict (from ``schemas/<name>.avsc``)."""
    if name not in SCHEMA_NAMES:
        msg = f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}"
        raise KeyError(msg)
    text = resources.files("schemas").joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def canonical_form(schema: Any) -> str:
    """Avro's Parsing Canonical Form of ``schema`` (logicalType and docs dropped)."""
    return str(to_parsing_canonical_form(schema))


def fingerprint(schema: Any) -> int:
    """CRC-64-AVRO fingerprint of the Parsing Canonical Form, as an unsigned int.

    On the wire it is written little-endian, as fastavro's hex digest spells it.
    """
    digest = avro_fingerprint(canonical_form(schema), "CRC-64-AVRO")
    return int.from_bytes(bytes.fromhex(digest), "little")


def _strip_logical(schema: Any) -> Any:
    """A copy without logicalType annotations: timestamps read and write as plain ints."""
    if isinstance(schema, list):
        return [_strip_logical(s) for s in schema]
    if isinstance(schema, dict):
        out = {k: _strip_logical(v) for k, v in schema.items() if k != "logicalType"}
        if "fields" in schema:
            out["fields"] = [{**f, "type": _strip_logical(f["type"])} for f in schema["fields"]]
        return out
    return schema


# -- Confluent Schema Registry ------------------------------------------------------------
class _Registry:
    """The two calls of the Confluent Schema Registry REST API this codec needs, cached."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, dict[str, Any]] = {}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read())
        except OSError as exc:
            msg = f"schema registry {self.url}{path} failed: {exc}"
            raise EnviroStreamError(msg) from exc

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        text = json.dumps(schema, separators=(",", ":"))
        if text not in self._ids:
            reply = self._call("POST", f"/subjects/{subject}/versions", {"schema": text})
            self._ids[text] = int(reply["id"])
            self._schemas[int(reply["id"])] = schema
        return self._ids[text]

    def schema(self, schema_id: int) -> dict[str, Any]:
        if schema_id not in self._schemas:
            reply = self._call("GET", f"/schemas/ids/{schema_id}")
            self._schemas[schema_id] = json.loads(reply["schema"])
        return self._schemas[schema_id]


# -- the codec ------------------------------------------------------------------------------
class AvroCodec:
    """Encode and decode the pipeline's records; batches are the unit of work."""

    def __init__(
        self, *, registry_url: str | None = None, extra_schemas: Iterable[dict[str, Any]] = ()
    ) -> None:
        self._current: dict[str, dict[str, Any]] = {}
        self._writers: dict[bytes, tuple[str, Any]] = {}  # fingerprint bytes -> (name, parsed)
        self._header: dict[str, bytes] = {}
        self._readers: dict[str, Any] = {}
        self._pairs: dict[tuple[bytes, str], tuple[Any, Any]] = {}
        self._registry = _Registry(registry_url) if registry_url else None
        for name in SCHEMA_NAMES:
            schema = load_schema(name)
            self._current[name] = schema
            self._readers[name] = parse_schema(_strip_logical(schema))
            self._header[name] = SINGLE_OBJECT_MARKER + self.register(schema).to_bytes(8, "little")
        for schema in extra_schemas:
            self.register(schema)

    def register(self, schema: dict[str, Any]) -> int:
        """Make another version of a schema known as a writer schema; return its fingerprint."""
        fp = fingerprint(schema)
        self._writers[fp.to_bytes(8, "little")] = (
            str(schema["name"]).rsplit(".", 1)[-1],
            parse_schema(_strip_logical(copy.deepcopy(schema))),
        )
        return fp

    # -- encode ---------------------------------------------------------------------------
    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        return self.encode_batch(name, [record])[0]

    def encode_batch(self, name: str, records: Iterable[dict[str, Any]]) -> list[bytes]:
        """Encode records with the current schema of ``name``."""
        parsed = self._readers[name]
        header = self._confluent_header(name) if self._registry else self._header[name]
        out = []
        buf = io.BytesIO()
        for record in records:
            buf.seek(0)
            buf.truncate()
            buf.write(header)
            try:
                schemaless_writer(buf, parsed, record)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise self._encode_error(name, record, exc) from exc
            out.append(buf.getvalue())
        return out

    def _confluent_header(self, name: str) -> bytes:
        assert self._registry is not None
        schema_id = self._registry.register(f"{name}-value", self._current[name])
        return CONFLUENT_MAGIC + struct.pack(">I", schema_id)

    def _encode_error(self, name: str, record: dict[str, Any], exc: Exception) -> EncodeError:
        problems: list[str] = []
        for field in self._current[name]["fields"]:
            if field["name"] not in record and "default" not in field:
                problems.append(f"required field {field['name']!r} is missing")
        if not problems:
            try:
                validate(record, self._readers[name], raise_errors=True)
            except Exception as verr:
                problems.append(str(verr))
        detail = "; ".join(problems) or f"{type(exc).__name__}: {exc}"
        return EncodeError(f"{name} record does not match its schema: {detail}")

    # -- decode ---------------------------------------------------------------------------
    def decode(self, data: bytes, name: str) -> dict[str, Any]:
        result = self.decode_batch(name, [data])[0]
        if isinstance(result, DecodeError):
            raise result
        return result

    def decode_batch(self, name: str, items: Sequence[bytes]) -> list[dict[str, Any] | DecodeError]:
        """Decode each item as ``name``; errors are returned in place, never raised."""
        reader = self._readers[name]
        out: list[dict[str, Any] | DecodeError] = []
        pairs = self._pairs
        for data in items:
            try:
                head = data[:10]
                if head[:2] == SINGLE_OBJECT_MARKER and len(data) >= 10:
                    key = (head, name)
                    pair = pairs.get(key)
                    if pair is None:
                        pair = self._pair(head[2:], name)
                    start = 10
                elif head[:1] == CONFLUENT_MAGIC and len(data) >= 5 and self._registry:
                    pair = self._confluent_pair(struct.unpack(">I", data[1:5])[0], name, reader)
                    start = 5
                else:
                    out.append(
                        NotAvroError(f"not an Avro single-object record (starts {data[:4]!r})")
                    )
                    continue
                buf = io.BytesIO(data)
                buf.seek(start)
                try:
                    record = schemaless_reader(buf, pair[0], pair[1])
                except Exception as exc:
                    out.append(
                        CorruptRecordError(f"corrupt {name} body: {type(exc).__name__}: {exc}")
                    )
                    continue
                if buf.tell() != len(data):
                    out.append(
                        CorruptRecordError(
                            f"corrupt {name} body: {len(data) - buf.tell()} bytes after the record"
                        )
                    )
                    continue
                out.append(record)  # type: ignore[arg-type]
            except DecodeError as exc:
                out.append(exc)
        return out

    def _pair(self, fp_bytes: bytes, name: str) -> tuple[Any, Any]:
        writer = self._writers.get(fp_bytes)
        if writer is None:
            fp = int.from_bytes(fp_bytes, "little")
            msg = (
                f"unknown schema fingerprint {fp:#018x} for {name}: "
                "written with a schema this reader does not know"
            )
            raise UnknownSchemaError(msg)
        if writer[0] != name:
            msg = f"record was written as {writer[0]}, expected {name}"
            raise UnknownSchemaError(msg)
        # Same schema as the reader: no resolution step (it costs a dict comparison per call).
        same = fp_bytes == self._header[name][2:]
        pair = (writer[1], None if same else self._readers[name])
        self._pairs[(SINGLE_OBJECT_MARKER + fp_bytes, name)] = pair
        return pair

    def _confluent_pair(self, schema_id: int, name: str, reader: Any) -> tuple[Any, Any]:
        assert self._registry is not None
        key = (CONFLUENT_MAGIC + schema_id.to_bytes(4, "big"), name)
        if key not in self._pairs:
            try:
                schema = self._registry.schema(schema_id)
            except EnviroStreamError as exc:
                msg = f"schema id {schema_id}: {exc}"
                raise UnknownSchemaError(msg) from exc
            self._pairs[key] = (parse_schema(_strip_logical(schema)), reader)
        return self._pairs[key]
