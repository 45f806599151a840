"""An encoder for flat records (the worker's aggregates and anomaly scores), column by column.

fastavro's ``schemaless_writer`` walks the schema for every record: ~17 µs a
``WindowAggregate`` here, so the 11,050 windows a minute of 800 devices closes took ~0.19 s
of the worker's event loop at once. A schema whose fields are all ``long``, ``double``,
``string``, ``enum`` or ``boolean`` (no unions, maps or nested records) is written here a
column at a time instead: the zig-zag varints of a long column in a few numpy steps, the
doubles as one array, each distinct string or symbol encoded once, and every record's
bytes laid out in one buffer.

It is only an accelerator, byte for byte what fastavro writes (``tests/unit/schemas/
test_flat_encoder.py``). A batch with anything it does not expect (a missing field left to
its default, a value of another type than the field's — a ``datetime`` for a timestamp,
an ``int`` for a double, a bool for a long —, a symbol not in the enum, a long outside 64
bits) is left whole to fastavro, which writes or refuses it as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import itemgetter
from typing import Any, cast

import numpy as np

__all__ = ["FastEncode", "flat_encoder"]

FastEncode = Callable[[Sequence[Mapping[str, Any]], bytes], list[bytes] | None]
"""``encode(records, header)``: each record's bytes after ``header``, or None when the
batch is not plain (fastavro then encodes all of it)."""

_PLAIN = {"long": int, "double": float, "string": str, "boolean": bool}
_MAX_VARINT = 10  # bytes of a zig-zag varint of 64 bits


class _NotPlain(Exception):
    """A value this encoder does not write (fastavro decides)."""


def _kind(t: Any) -> str:
    if isinstance(t, str):
        return t
    if isinstance(t, dict) and isinstance(t.get("type"), str):
        return str(t["type"])
    return "?"


def flat_encoder(schema: Mapping[str, Any]) -> FastEncode | None:
    """The column-wise encoder of ``schema`` (a record as JSON), or None when a field is
    not a long, double, string, enum or boolean.

    >>> encode = flat_encoder({"type": "record", "name": "P", "fields": [
    ...     {"name": "id", "type": "string"}, {"name": "n", "type": "long"}]})
    >>> encode([{"id": "a", "n": -2}, {"id": "", "n": 64}], b"H")
    [b'H\\x02a\\x03', b'H\\x00\\x80\\x01']
    """
    fields: list[tuple[str, str, dict[str, bytes] | None]] = []
    for f in schema.get("fields", []):
        kind = _kind(f["type"])
        if kind == "enum":
            symbols = f["type"]["symbols"]
            fields.append((f["name"], kind, {s: _varint(i) for i, s in enumerate(symbols)}))
        elif kind in _PLAIN:
            fields.append((f["name"], kind, None))
        else:
            return None
    if len(fields) < 2:
        return None  # (one field: ``take`` would not give tuples)
    take = itemgetter(*(name for name, _, _ in fields))

    def encode(records: Sequence[Mapping[str, Any]], header: bytes) -> list[bytes] | None:
        if not records:
            return []
        try:
            columns = zip(*map(take, records), strict=True)  # KeyError: left to a default
            parts = [_column(list(c), *f[1:]) for c, f in zip(columns, fields, strict=True)]
        except (_NotPlain, KeyError, TypeError):  # TypeError: a record is not a mapping
            return None
        return _lay_out(header, parts, len(records))

    return encode


def _varint(i: int) -> bytes:
    """The zig-zag varint of ``i`` (as Avro writes an int or long)."""
    z = (i << 1) ^ (i >> 63)
    out = bytearray()
    while z > 0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _column(
    values: list[Any], kind: str, symbols: dict[str, bytes] | None
) -> tuple[np.ndarray, np.ndarray]:
    """One field of every record: (its bytes laid end to end, each record's length)."""
    if symbols is not None:
        return _pieces(list(map(symbols.get, values)))
    if set(map(type, values)) != {_PLAIN[kind]}:
        raise _NotPlain
    if kind == "long":
        return _long_column(values)
    if kind == "double":
        raw = np.array(values, dtype="<f8").view(np.uint8)
        return raw, np.full(len(values), 8, dtype=np.int64)
    if kind == "boolean":
        return np.array(values, dtype=np.uint8), np.ones(len(values), dtype=np.int64)
    known = {s: _varint(len(raw)) + raw for s in set(values) for raw in (s.encode("utf-8"),)}
    return _pieces(list(map(known.__getitem__, values)))


def _pieces(out: list[bytes | None]) -> tuple[np.ndarray, np.ndarray]:
    if None in out:
        raise _NotPlain  # a symbol not in the enum
    pieces = cast(list[bytes], out)
    lengths = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
    return np.frombuffer(b"".join(pieces), dtype=np.uint8), lengths


def _long_column(values: list[int]) -> tuple[np.ndarray, np.ndarray]:
    try:
        v = np.array(values, dtype=np.int64)
    except OverflowError as exc:
        raise _NotPlain from exc
    z = (v.view(np.uint64) << np.uint64(1)) ^ (v >> 63).view(np.uint64)
    lengths = np.ones(len(z), dtype=np.int64)
    rest = z >> np.uint64(7)
    while rest.any():
        lengths += rest > 0
        rest >>= np.uint64(7)
    steps = np.arange(_MAX_VARINT, dtype=np.uint64)
    groups = ((z[:, None] >> (steps * np.uint64(7))) & np.uint64(0x7F)).astype(np.uint8)
    more = np.arange(_MAX_VARINT) < (lengths - 1)[:, None]
    groups |= more.astype(np.uint8) << 7
    return groups[np.arange(_MAX_VARINT) < lengths[:, None]], lengths


def _lay_out(header: bytes, parts: list[tuple[np.ndarray, np.ndarray]], n: int) -> list[bytes]:
    """Each record's bytes: ``header`` then its piece of every field, in field order."""
    head = np.frombuffer(header, dtype=np.uint8)
    sizes = len(head) + sum(lengths for _, lengths in parts)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    out = np.empty(int(ends[-1]) if n else 0, dtype=np.uint8)
    if len(head):
        out[(starts[:, None] + np.arange(len(head))).ravel()] = np.tile(head, n)
    at = starts + len(head)  # where each record's next field goes
    for flat, lengths in parts:
        first = np.cumsum(lengths) - lengths  # each record's piece within ``flat``
        out[np.repeat(at - first, lengths) + np.arange(len(flat))] = flat
        at = at + lengths
    data = out.tobytes()
    return [data[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
