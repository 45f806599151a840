"""Avro encoding of the pipeline's records, in batches, with fastavro.

Wire formats:

- Avro single-object encoding (default): ``C3 01`` + the 8-byte little-endian CRC-64-AVRO
  fingerprint of the writer schema's Parsing Canonical Form + the Avro body. The writer
  schema is looked up by fingerprint among the known ones (``schemas/*.avsc``, the older
  versions in ``schemas/history/*.avsc`` and any given to :meth:`AvroCodec.register`), then
  resolved to the current (reader) schema of the name asked for.
- Confluent wire format (when ``registry_url`` or ``registry`` is given): ``00`` + 4-byte
  schema id (big endian) + body. Encoding registers the schema under ``<name>-value`` (not
  Confluent's ``<topic>-value``); decoding fetches the writer schema by id (cached), and
  single-object records still decode.

Timestamps are int epoch milliseconds (``logicalType`` dropped: same bytes and fingerprint,
no datetime on the hot path). Enums are strings; a union is ``None`` or the value.

Errors are typed: :class:`EncodeError` names the field that does not match; every bad input
to :meth:`AvroCodec.decode_batch` becomes a :class:`DecodeError` in its position.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.schema import fingerprint as _crc64_hex
from fastavro.schema import to_parsing_canonical_form
from fastavro.validation import ValidationError, validate
from pydantic import SecretStr

from core.errors import EnviroStreamError
from schemas._registry import SchemaRegistryClient, SchemaRegistryError
from schemas.flat_encoder import FastEncode, flat_encoder
from schemas.reading_decoder import FastDecode, reading_decoder

__all__ = [
    "SCHEMA_NAMES",
    "AvroCodec",
    "CorruptRecordError",
    "DecodeError",
    "EncodeError",
    "NotAvroError",
    "SchemaRegistryError",
    "UnknownSchemaError",
    "canonical_form",
    "fingerprint",
    "history_schemas",
    "load_schema",
]

SCHEMA_NAMES = (
    "UniversalSensorReading",
    "WindowAggregate",
    "AnomalyScore",
    "Alert",
    "AlertFeedback",
)
SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_SO_HEADER = 10  # marker + fingerprint
_CF_HEADER = 5  # magic + schema id
FLAT_BATCH = 256  # records from which a flat schema is written column-wise (schemas/flat_encoder)


# -- errors -----------------------------------------------------------------------------------
class DecodeError(EnviroStreamError):
    """Bytes that cannot be read as a record: ``reason`` is machine-friendly (a dead-letter
    header, a metric label), the message says what was wrong in words."""

    reason = "decode_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class NotAvroError(DecodeError):
    """Neither a single-object record nor (with a registry) a Confluent-framed one."""

    reason = "not_avro"


class UnknownSchemaError(DecodeError):
    """The writer schema is unknown or cannot be resolved to the reader schema: reasons
    ``unknown_fingerprint``, ``unknown_schema_id`` and ``no_registry`` (Confluent framing),
    ``wrong_record_type`` (an ``Alert`` read as a reading), ``incompatible_schema``."""

    reason = "unknown_fingerprint"


class CorruptRecordError(DecodeError):
    """The header is fine but the body is truncated, malformed or followed by extra bytes."""

    reason = "corrupt_body"


class EncodeError(EnviroStreamError):
    """A record that does not match its schema; ``field`` names the culprit when known."""

    def __init__(self, message: str, *, schema_name: str, field: str | None = None) -> None:
        super().__init__(message)
        self.schema_name = schema_name
        self.field = field


# -- schema files, canonical form, fingerprint -----------------------------------------------
def load_schema(name: str) -> dict[str, Any]:
    """The current schema ``name`` as a JSON dict (a fresh copy of ``schemas/<name>.avsc``)."""
    if name not in SCHEMA_NAMES:
        raise KeyError(_unknown_name(name, SCHEMA_NAMES))
    text = resources.files("schemas").joinpath(f"{name}.avsc").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def history_schemas() -> list[dict[str, Any]]:
    """Older versions kept in ``schemas/history/*.avsc``: writers still known by fingerprint."""
    folder = resources.files("schemas").joinpath("history")
    if not folder.is_dir():
        return []
    found = sorted((p for p in folder.iterdir() if p.name.endswith(".avsc")), key=lambda p: p.name)
    return [json.loads(p.read_text(encoding="utf-8")) for p in found]


def canonical_form(schema: Any) -> str:
    """Avro's Parsing Canonical Form of ``schema`` (docs, defaults and logicalType dropped)."""
    return str(to_parsing_canonical_form(schema))


def fingerprint(schema: Any) -> int:
    """CRC-64-AVRO fingerprint of the Parsing Canonical Form, as an unsigned int.

    On the wire it is written little-endian: ``fingerprint(s).to_bytes(8, "little")``.
    """
    return int.from_bytes(
        bytes.fromhex(_crc64_hex(canonical_form(schema), "CRC-64-AVRO")), "little"
    )


def _parse(schema: dict[str, Any]) -> dict[str, Any]:
    """fastavro's parsed form of a record schema, logicalType stripped (ints, not datetimes)."""
    parsed = parse_schema(_strip_logical(copy.deepcopy(schema)))
    if not isinstance(parsed, dict):
        msg = f"expected a record schema, got {type(parsed).__name__}"
        raise TypeError(msg)
    return parsed


def _strip_logical(schema: Any) -> Any:
    """A copy without ``logicalType`` annotations: timestamps read and write as plain ints."""
    if isinstance(schema, list):
        return [_strip_logical(s) for s in schema]
    if isinstance(schema, dict):
        out = {k: v for k, v in schema.items() if k != "logicalType"}
        for key in ("type", "items", "values"):
            if key in out:
                out[key] = _strip_logical(out[key])
        if "fields" in out:
            out["fields"] = [_strip_logical(f) for f in out["fields"]]
        return out
    return schema


def _short_name(schema: Mapping[str, Any]) -> str:
    return str(schema["name"]).rsplit(".", 1)[-1]


def _unknown_name(name: str, known: Iterable[str]) -> str:
    return f"unknown schema {name!r}; known: {', '.join(known)}"


# -- the codec --------------------------------------------------------------------------------
# A resolved pair: (short name of the writer record, parsed writer, parsed reader or None).
_Pair = tuple[str, dict[str, Any], dict[str, Any] | None]


class AvroCodec:
    """Encode and decode the pipeline's records; batches are the unit of work.

    >>> codec = AvroCodec()
    >>> record = {"reading_id": "r1", "device_id": "d1", "sensor_id": "d1/t",
    ...           "capability": "TEMPERATURE", "value": 21.5, "timestamp": 1_700_000_000_000}
    >>> data = codec.encode("UniversalSensorReading", record)
    >>> data[:2].hex(), len(data)
    ('c301', 50)
    >>> decoded = codec.decode(data, "UniversalSensorReading")
    >>> decoded["timestamp"], decoded["device_type"], decoded["label"]
    (1700000000000, 'UNKNOWN', None)
    """

    def __init__(
        self,
        *,
        registry_url: str | SecretStr | None = None,
        registry: SchemaRegistryClient | None = None,
        extra_schemas: Iterable[dict[str, Any]] = (),
    ) -> None:
        self._current: dict[str, dict[str, Any]] = {}  # name -> schema JSON (as written)
        self._parsed: dict[str, dict[str, Any]] = {}  # name -> parsed, logicalType stripped
        self._headers: dict[str, bytes] = {}  # name -> single-object header
        self._writers: dict[bytes, tuple[str, dict[str, Any]]] = {}  # fingerprint -> writer
        self._pairs: dict[tuple[bytes, str], _Pair] = {}  # (wire header, reader name) -> pair
        if registry is None and registry_url:
            registry = SchemaRegistryClient(registry_url)  # no auth file / TLS options
        self._registry = registry
        self._flat: dict[str, FastEncode | None] = {}  # name -> column-wise encoder, if flat
        self._fast: dict[str, FastDecode] = {}  # name -> specialised decoder of the current
        for name in SCHEMA_NAMES:
            self._set_current(load_schema(name))
        for schema in (*history_schemas(), *extra_schemas):
            self.register(schema)

    @property
    def schema_names(self) -> tuple[str, ...]:
        """Names this codec can encode and decode."""
        return tuple(self._current)

    def current(self, name: str) -> tuple[dict[str, Any], bytes]:
        """The current schema of ``name`` (as written) and its single-object header."""
        return self._current[name], self._headers[name]

    def _set_current(self, schema: dict[str, Any]) -> None:
        name = _short_name(schema)
        self._current[name] = schema
        self._parsed[name] = _parse(schema)
        self._headers[name] = SINGLE_OBJECT_MARKER + self.register(schema).to_bytes(8, "little")
        self._flat[name] = flat_encoder(schema)
        fast = reading_decoder(schema) if name == "UniversalSensorReading" else None
        if fast is not None:
            self._fast[name] = fast
        else:
            self._fast.pop(name, None)

    def register(self, schema: dict[str, Any]) -> int:
        """Make another version of a schema known as a writer schema; return its fingerprint.

        A schema whose name is not known yet also becomes the current schema of that name.
        """
        try:
            name = _short_name(schema)
            parsed = _parse(schema)
            fp = fingerprint(schema)
        except Exception as exc:  # fastavro raises several types for an invalid schema
            msg = f"not a valid Avro record schema: {type(exc).__name__}: {exc}"
            raise ValueError(msg) from exc
        self._writers[fp.to_bytes(8, "little")] = (name, parsed)
        if name not in self._current:
            self._set_current(schema)
        return fp

    def _reader(self, name: str) -> dict[str, Any]:
        parsed = self._parsed.get(name)
        if parsed is None:
            raise KeyError(_unknown_name(name, self._current))
        return parsed

    # -- encode -----------------------------------------------------------------------------
    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """One record of schema ``name``, framed for the wire."""
        return self.encode_batch(name, (record,))[0]

    def encode_batch(self, name: str, records: Iterable[dict[str, Any]]) -> list[bytes]:
        """Records encoded with the current schema of ``name``; ``EncodeError`` names a bad field.

        Fields with a default may be left out. Values are not validated beforehand (that would
        double the cost); a record fastavro cannot write is diagnosed field by field.
        """
        parsed = self._reader(name)
        header = self._confluent_header(name) if self._registry else self._headers[name]
        flat = self._flat.get(name)
        if (
            flat is not None
            and isinstance(records, Sequence)
            and len(records) >= FLAT_BATCH
            and (written := flat(records, header)) is not None  # None: fastavro decides
        ):
            return written
        out: list[bytes] = []
        append = out.append
        for record in records:
            buf = io.BytesIO()
            buf.write(header)
            try:
                schemaless_writer(buf, parsed, record)
            except Exception as exc:
                raise self._encode_error(name, record, exc) from exc
            append(buf.getvalue())
        return out

    def _confluent_header(self, name: str) -> bytes:
        assert self._registry is not None
        schema_id = self._registry.register(f"{name}-value", self._current[name])
        return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big")

    def _encode_error(self, name: str, record: Any, exc: Exception) -> EncodeError:
        """Say which field of ``record`` does not match, expected vs got."""
        if not isinstance(record, Mapping):
            msg = f"a {name} record must be a dict, got {type(record).__name__}"
            return EncodeError(msg, schema_name=name)
        for field in self._current[name]["fields"]:
            if field["name"] not in record and "default" not in field:
                msg = (
                    f"{name} record is missing the required field {field['name']!r} "
                    "(it has no default)"
                )
                return EncodeError(msg, schema_name=name, field=field["name"])
        try:
            validate(dict(record), self._parsed[name], raise_errors=True)
        except ValidationError as verr:
            return self._describe_invalid(name, record, verr)
        msg = f"{name} record could not be encoded: {type(exc).__name__}: {exc}"
        return EncodeError(msg, schema_name=name)

    def _describe_invalid(
        self, name: str, record: Mapping[str, Any], verr: ValidationError
    ) -> EncodeError:
        prefix = str(self._parsed[name]["name"]) + "."
        field: str | None = None
        for error in verr.errors:
            path = str(getattr(error, "field", ""))
            if path.startswith(prefix):
                field = path[len(prefix) :]
                break
        if field is None or field not in record:
            msg = f"{name} record does not match its schema: {verr}"
            return EncodeError(msg, schema_name=name, field=field)
        value = record[field]
        declared = next(f["type"] for f in self._current[name]["fields"] if f["name"] == field)
        hint = ""
        if isinstance(value, dt.datetime | dt.date):
            hint = "; timestamps are int epoch milliseconds, e.g. int(ts.timestamp() * 1000)"
        nested = [
            f"{e.field} expects {_describe_type(e.schema)}, got {_clip(repr(e.datum), 40)}"
            for e in verr.errors[1:]
        ]
        detail = f" ({'; '.join(nested)})" if nested else ""
        msg = (
            f"{name} field {field!r} expects {_describe_type(declared)}, "
            f"got {type(value).__name__} {_clip(repr(value))}{hint}{detail}"
        )
        return EncodeError(msg, schema_name=name, field=field)

    # -- decode -----------------------------------------------------------------------------
    def decode(self, data: bytes, name: str) -> dict[str, Any]:
        """One record read as the current schema of ``name``; raises a ``DecodeError``."""
        result = self.decode_batch(name, (data,))[0]
        if isinstance(result, DecodeError):
            raise result
        return result

    def decode_batch(self, name: str, items: Sequence[bytes]) -> list[dict[str, Any] | DecodeError]:
        """Each item read as the current schema of ``name``; bad items become errors in place.

        Nothing about the bytes is raised. Raised: ``KeyError`` for an unknown ``name``, and
        ``ServiceUnavailableError`` when the schema registry cannot be reached (a reason to
        retry the batch, not to dead-letter it). Readings in the current schema go through
        the specialised decoder (``schemas/reading_decoder.py``); what it leaves, fastavro reads.
        """
        fast = self._fast.get(name)
        if fast is None:
            return self._decode_each(name, items)
        out: list[Any] = fast(items, self._headers[name])
        left = [i for i, rec in enumerate(out) if rec is None]
        if left:
            for i, rec in zip(left, self._decode_each(name, [items[i] for i in left]), strict=True):
                out[i] = rec
        return out

    def _decode_each(self, name: str, items: Sequence[bytes]) -> list[dict[str, Any] | DecodeError]:
        self._reader(name)
        pairs = self._pairs
        failed: dict[bytes, DecodeError] = {}  # one registry lookup per unknown id and batch
        out: list[dict[str, Any] | DecodeError] = []
        append = out.append
        for data in items:
            if type(data) is not bytes:
                try:
                    data = bytes(data)
                except TypeError:
                    msg = f"expected bytes, got {type(data).__name__}"
                    append(NotAvroError(msg))
                    continue
            if data[:2] == SINGLE_OBJECT_MARKER and len(data) >= _SO_HEADER:
                start = _SO_HEADER
            elif data[:1] == CONFLUENT_MAGIC and len(data) >= _CF_HEADER:
                start = _CF_HEADER
            else:
                msg = f"not an Avro single-object or Confluent record (starts {data[:4]!r})"
                append(NotAvroError(msg))
                continue
            head = data[:start]
            pair = pairs.get((head, name))
            if pair is None:
                error = failed.get(head)
                if error is None:
                    try:
                        pair = self._pair(head, name)
                    except DecodeError as exc:
                        failed[head] = error = exc
                if pair is None:
                    assert error is not None
                    append(error)
                    continue
            buf = io.BytesIO(data)
            buf.seek(start)
            try:
                record = schemaless_reader(buf, pair[1], pair[2])
            except SchemaResolutionError as exc:
                msg = f"{pair[0]} writer schema cannot be read as the current {name}: {exc}"
                append(UnknownSchemaError(msg, reason="incompatible_schema"))
                continue
            except Exception as exc:  # EOFError, IndexError, UnicodeDecodeError, ...
                msg = f"corrupt {name} body ({len(data)} bytes): {type(exc).__name__}: {exc}"
                append(CorruptRecordError(msg))
                continue
            if buf.tell() != len(data):
                extra = len(data) - buf.tell()
                msg = f"corrupt {name} body: {extra} bytes left after a complete record"
                append(CorruptRecordError(msg))
                continue
            append(record)  # type: ignore[arg-type]  # a record schema reads as a dict
        return out

    def _pair(self, head: bytes, name: str) -> _Pair:
        """Resolve a wire header to (writer, reader) for ``name`` and cache it."""
        if head[:1] == CONFLUENT_MAGIC:
            writer_name, writer = self._confluent_writer(int.from_bytes(head[1:5], "big"))
        else:
            known = self._writers.get(head[2:])
            if known is None:
                fp = int.from_bytes(head[2:], "little")
                msg = (
                    f"unknown schema fingerprint {fp:#018x} for {name}: written with a schema "
                    "this codec does not know (an older or newer version? register() it, or "
                    "keep old versions in schemas/history/)"
                )
                raise UnknownSchemaError(msg)
            writer_name, writer = known
        if writer_name != name:
            msg = f"record was written as {writer_name}, expected {name}"
            raise UnknownSchemaError(msg, reason="wrong_record_type")
        reader = self._parsed[name]
        # Same schema: no resolution step (fastavro skips it when the reader is None).
        same = writer is reader or head == self._headers[name] or writer == reader
        pair: _Pair = (writer_name, writer, None if same else reader)
        self._pairs[(head, name)] = pair
        return pair

    def _confluent_writer(self, schema_id: int) -> tuple[str, dict[str, Any]]:
        if self._registry is None:
            msg = (
                f"Confluent-framed record (schema id {schema_id}) but no schema registry is "
                "configured; set ENVIROSTREAM_SCHEMA_REGISTRY_URL"
            )
            raise UnknownSchemaError(msg, reason="no_registry")
        try:
            schema = self._registry.schema(schema_id)
        except SchemaRegistryError as exc:
            reason = "unknown_schema_id" if exc.status == 404 else "registry_refused"
            msg = f"schema id {schema_id}: {exc}"
            raise UnknownSchemaError(msg, reason=reason) from exc
        try:
            return _short_name(schema), _parse(schema)
        except Exception as exc:
            msg = f"schema id {schema_id} is not a valid Avro schema: {exc}"
            raise UnknownSchemaError(msg, reason="unknown_schema_id") from exc


def _describe_type(schema: Any) -> str:
    """A short human description of an Avro type, for error messages."""
    if isinstance(schema, str):
        return schema
    if isinstance(schema, list):
        return " or ".join(_describe_type(s) for s in schema)
    kind = schema.get("type")
    if "logicalType" in schema:
        return f"{kind} ({schema['logicalType']}, int epoch milliseconds)"
    if kind == "enum":
        return f"enum {schema['name']} (one of {', '.join(schema['symbols'])})"
    if kind == "map":
        return f"map of {_describe_type(schema['values'])}"
    if kind == "array":
        return f"array of {_describe_type(schema['items'])}"
    if kind == "record":
        return f"record {schema['name']}"
    return _describe_type(kind)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
