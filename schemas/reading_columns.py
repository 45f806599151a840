"""A batch of readings decoded column by column, with numpy over the whole batch at once.

The worker's hot path. :mod:`schemas.reading_decoder` walks each record in Python and
builds a dict per reading (~5 µs a reading here); this module reads every record of a batch
in step: the records are joined into one buffer, and each field is one vectorised step over
all records (a length or enum byte, a double, a varint of up to 9 bytes), so the Python work
left per reading is making its strings: the reading id, and the low-cardinality strings
(device, sensor, unit, tenant, scenario), each distinct byte string decoded once per batch
(~2 µs a reading in all). The result is the columns the ``readings`` table is written with,
plus the values and event times as arrays for the batch's checks.

Like the per-record decoder it is only an accelerator, for the single-object records of the
*current* ``UniversalSensorReading`` layout whose strings have lengths under 64 bytes and
whose attributes map is empty. Every other item (another framing or writer schema, a map
with entries, a long string, a malformed body) is left for :meth:`AvroCodec.decode_batch`,
which decodes or rejects it exactly as it would any item (:class:`ColumnReader`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schemas.codec import AvroCodec, DecodeError
from schemas.reading_decoder import reading_decoder

__all__ = ["ColumnReader", "ReadingColumns", "decode_columns"]

NAME = "UniversalSensorReading"
_PAD = b"\0" * 16  # gathers that run past the last record stay inside the buffer
_TEN = np.arange(10)
_EIGHT = np.arange(8)
_SHIFTS = (7 * np.arange(10)).astype(np.uint64)
_NO_ATTRIBUTES: dict[str, str] = {}


@dataclass(slots=True, eq=False)
class ReadingColumns:
    """The readings of a batch, one entry per input item in every column.

    The lists are the ``readings`` table's columns (``scenario`` and ``phase`` are ``""``
    without a label). ``values`` and ``times`` repeat ``value`` and ``timestamp`` as arrays
    (NaN and 0 where an item is not a reading); ``id_bytes`` is the longest UTF-8 length of
    an item's reading, device, sensor and tenant ids and ``key_bytes`` the shorter of its
    reading and device ids' (-1: not known). ``others`` holds what
    the codec made of the items the vectorised path left: the record, or its error.
    """

    reading_id: list[str]
    device_id: list[str]
    device_type: list[str]
    sensor_id: list[str]
    capability: list[str]
    value: list[float]
    unit: list[str]
    timestamp: list[int]
    sequence: list[int]
    quality: list[str]
    tenant_id: list[str]
    attributes: list[dict[str, str]]
    scenario: list[str]
    phase: list[str]
    values: np.ndarray
    times: np.ndarray
    id_bytes: np.ndarray
    key_bytes: np.ndarray
    others: dict[int, dict[str, Any] | DecodeError]

    def __len__(self) -> int:
        return len(self.reading_id)

    def error(self, i: int) -> DecodeError | None:
        """Why item ``i`` is not a reading (None: it is one)."""
        other = self.others.get(i)
        return other if isinstance(other, DecodeError) else None

    def record(self, i: int) -> dict[str, Any]:
        """Item ``i`` as :meth:`AvroCodec.decode_batch` gives it (a decoded reading)."""
        other = self.others.get(i)
        if isinstance(other, dict):
            return other
        if other is not None:
            msg = f"item {i} is not a reading: {other}"
            raise ValueError(msg)
        phase = self.phase[i]
        return {
            "reading_id": self.reading_id[i],
            "device_id": self.device_id[i],
            "device_type": self.device_type[i],
            "sensor_id": self.sensor_id[i],
            "capability": self.capability[i],
            "value": self.value[i],
            "unit": self.unit[i],
            "timestamp": self.timestamp[i],
            "sequence": self.sequence[i],
            "quality": self.quality[i],
            "tenant_id": self.tenant_id[i],
            "attributes": {},
            "label": {"scenario": self.scenario[i], "phase": phase} if phase else None,
        }

    def table_columns(self) -> list[list[Any]]:
        """The lists in the ``readings`` table's column order (``streams.readings``)."""
        return [
            self.timestamp,
            self.tenant_id,
            self.device_id,
            self.device_type,
            self.sensor_id,
            self.capability,
            self.value,
            self.unit,
            self.quality,
            self.sequence,
            self.reading_id,
            self.scenario,
            self.phase,
            self.attributes,
        ]


class ColumnSymbols:
    """The enum symbols of one schema version, as object arrays (vectorised lookups)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        fields = schema["fields"]
        # the per-record decoder's check: names, types, the label's union and fields, the
        # map's values (a type change under the same names is another layout too)
        if reading_decoder(schema) is None:
            msg = f"{NAME} has another layout than this decoder reads"
            raise ValueError(msg)
        types = {f["name"]: f["type"] for f in fields}
        self.device_type = np.array(types["device_type"]["symbols"], dtype=object)
        self.capability = np.array(types["capability"]["symbols"], dtype=object)
        self.quality = np.array(types["quality"]["symbols"], dtype=object)
        label = types["label"][1]
        phases = next(f["type"]["symbols"] for f in label["fields"] if f["name"] == "phase")
        self.phase = np.array(["", *phases], dtype=object)  # index 0: no label


def _texts(blob: bytes, starts: np.ndarray, ends: np.ndarray, ok: np.ndarray) -> list[str]:
    """The strings at ``blob[starts[i]:ends[i]]``, each distinct byte string decoded once;
    an item that is not UTF-8 gets ``""`` and ``ok[i] = False``."""
    seen: dict[bytes, str] = {}
    get = seen.get
    out: list[str] = []
    append = out.append
    for i, (a, e) in enumerate(zip(starts.tolist(), ends.tolist(), strict=True)):
        raw = blob[a:e]
        text = get(raw)
        if text is None:
            try:
                text = seen[raw] = raw.decode()
            except UnicodeDecodeError:
                ok[i] = False
                text = ""
        append(text)
    return out


def _unique_texts(blob: bytes, starts: np.ndarray, ends: np.ndarray, ok: np.ndarray) -> list[str]:
    """:func:`_texts` for a field whose values rarely repeat (reading ids): one pass without
    the dictionary, or :func:`_texts` when an item is not UTF-8."""
    try:
        return [blob[a:e].decode() for a, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    except UnicodeDecodeError:
        return _texts(blob, starts, ends, ok)


def _names(
    blob: bytes, buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, ok: np.ndarray
) -> list[str]:
    """:func:`_texts` for a low-cardinality field: when neighbours repeat (a batch of one
    tenant, a device's readings one after another), each run of equal byte strings is
    decoded once and repeated; otherwise item by item."""
    n = len(starts)
    if n == 0:
        return []
    lens = ends - starts
    new = np.ones(n, dtype=bool)  # the items whose bytes differ from the previous item's
    new[1:] = lens[1:] != lens[:-1]
    # an item not read (its span may run past the buffer) shares no run with a neighbour
    new[1:] |= ~ok[1:] | ~ok[:-1]
    if 4 * np.count_nonzero(new) > n:  # the lengths alone change too often: no runs
        return _texts(blob, starts, ends, ok)
    width = int(lens.max())
    if width > 0:
        cols = np.arange(width)
        g = buf[np.minimum(starts[:, None] + cols, len(buf) - 1)]
        g[cols[None, :] >= lens[:, None]] = 0
        new[1:] |= (g[1:] != g[:-1]).any(axis=1)
    firsts = np.flatnonzero(new)
    if 4 * len(firsts) > n:
        return _texts(blob, starts, ends, ok)
    run_ok = np.ones(len(firsts), dtype=bool)
    texts = _texts(blob, starts[firsts], ends[firsts], run_ok)
    counts = np.diff(np.append(firsts, n))
    if not run_ok.all():
        ok &= np.repeat(run_ok, counts)
    return np.repeat(np.array(texts, dtype=object), counts).tolist()


def decode_columns(
    items: Sequence[Any], header: bytes, sym: ColumnSymbols
) -> tuple[ReadingColumns, np.ndarray]:
    """The columns of ``items`` (single-object records of the schema of ``sym`` under
    ``header``) and a mask of the items read; the entries of the others are placeholders.

    >>> from schemas import AvroCodec, load_schema
    >>> codec = AvroCodec()
    >>> r = {"reading_id": "r1", "device_id": "d1", "sensor_id": "d1/t", "capability": "VOC",
    ...      "value": 0.5, "timestamp": 1_700_000_000_000, "tenant_id": "acme"}
    >>> data = codec.encode(NAME, r)
    >>> symbols = ColumnSymbols(load_schema(NAME))
    >>> cols, ok = decode_columns([data, b"junk"], data[:10], symbols)
    >>> cols.capability[0], cols.timestamp[0], cols.tenant_id[0], ok.tolist()
    ('VOC', 1700000000000, 'acme', [True, False])
    """
    n = len(items)
    items = [d if type(d) is bytes else b"" for d in items]
    blob = b"".join(items)
    buf = np.frombuffer(blob + _PAD, np.uint8)
    last = len(blob)  # gathers start at most here (the pad covers what follows)
    lens = np.fromiter(map(len, items), np.int64, n)
    ends = np.cumsum(lens)
    ok = lens > len(header) + 20  # the shortest reading body is longer
    pos = ends - lens
    ok &= (buf[np.minimum(pos, last)[:, None] + np.arange(len(header))] == list(header)).all(1)
    pos = pos + len(header)

    def byte() -> np.ndarray:
        return buf[np.minimum(pos, last)].astype(np.int64)

    def string() -> tuple[np.ndarray, np.ndarray]:  # a length under 64, then the bytes
        nonlocal pos, ok
        b = byte()
        ok &= (b < 0x80) & (b & 1 == 0)
        start = pos + 1
        pos = start + (b >> 1)
        ok &= pos <= ends
        return start, pos

    def enum(symbols: np.ndarray) -> np.ndarray:  # one byte: an even index below the limit
        nonlocal pos, ok
        b = byte()
        ok &= (b < min(2 * len(symbols), 0x80)) & (b & 1 == 0)
        pos = pos + 1
        return np.where(ok, b >> 1, 0)

    def varint() -> np.ndarray:  # zig-zag, at most 9 bytes (63 bits)
        nonlocal pos, ok
        m = buf[np.minimum(pos, last)[:, None] + _TEN].astype(np.uint64)
        stop = (m & 0x80) == 0
        length = stop.argmax(axis=1) + 1
        ok &= stop.any(axis=1) & (length <= 9)
        used = _TEN[None, :] < length[:, None]
        v = (((m & 0x7F) << _SHIFTS) * used).sum(axis=1, dtype=np.uint64)
        pos = pos + length
        return (v >> np.uint64(1)).astype(np.int64) ^ -(v & np.uint64(1)).astype(np.int64)

    rid = string()
    dev = string()
    dtype = enum(sym.device_type)
    sen = string()
    cap = enum(sym.capability)
    values = buf[np.minimum(pos, last)[:, None] + _EIGHT].view("<f8").ravel()
    pos = pos + 8
    unit = string()
    times = varint()
    seq = varint()
    qual = enum(sym.quality)
    ten = string()
    ok &= byte() == 0  # an empty attributes map
    pos = pos + 1
    branch = byte()
    pos = pos + 1
    labelled = branch == 2
    ok &= (branch == 0) | labelled
    b = byte()
    scen_start = pos + 1
    scen_end = scen_start + (b >> 1)
    ph = buf[np.minimum(scen_end, last)].astype(np.int64)
    phase_limit = min(2 * (len(sym.phase) - 1), 0x80)  # one byte, as enum() reads
    ok &= ~labelled | ((b < 0x80) & (b & 1 == 0) & (ph < phase_limit) & (ph & 1 == 0))
    pos = np.where(labelled, scen_end + 1, pos)
    ok &= pos == ends
    scen_end = np.where(labelled, scen_end, scen_start)  # no label: an empty scenario
    phase = np.where(labelled & ok, (ph >> 1) + 1, 0)
    rid_bytes, dev_bytes = rid[1] - rid[0], dev[1] - dev[0]
    id_bytes = np.maximum.reduce([rid_bytes, dev_bytes, sen[1] - sen[0], ten[1] - ten[0]])
    cols = ReadingColumns(
        reading_id=_unique_texts(blob, *rid, ok),
        device_id=_names(blob, buf, *dev, ok),
        device_type=sym.device_type[dtype].tolist(),
        sensor_id=_names(blob, buf, *sen, ok),
        capability=sym.capability[cap].tolist(),
        value=values.tolist(),
        unit=_names(blob, buf, *unit, ok),
        timestamp=times.tolist(),
        sequence=seq.tolist(),
        quality=sym.quality[qual].tolist(),
        tenant_id=_names(blob, buf, *ten, ok),
        attributes=[_NO_ATTRIBUTES] * n,
        scenario=_names(blob, buf, scen_start, scen_end, ok),
        phase=sym.phase[phase].tolist(),
        values=values,
        times=times,
        id_bytes=np.where(ok, id_bytes, -1),
        key_bytes=np.where(ok, np.minimum(rid_bytes, dev_bytes), -1),
        others={},
    )
    return cols, ok


class ColumnReader:
    """Reads batches of ``UniversalSensorReading`` items into :class:`ReadingColumns`: the
    vectorised path for the current layout, the codec for every item it leaves."""

    def __init__(self, codec: AvroCodec) -> None:
        self.codec = codec
        self._symbols: dict[bytes, ColumnSymbols | None] = {}  # by the current header

    def read(self, items: Sequence[Any]) -> ReadingColumns:
        schema, header = self.codec.current(NAME)
        if header not in self._symbols:
            try:
                self._symbols[header] = ColumnSymbols(schema)
            except (ValueError, KeyError, TypeError, IndexError, StopIteration):
                self._symbols[header] = None  # a layout of the future: the codec reads all
        sym = self._symbols[header]
        if sym is None:
            cols, ok = _placeholders(len(items)), np.zeros(len(items), dtype=bool)
        else:
            cols, ok = decode_columns(items, header, sym)
        if not ok.all():
            left = np.flatnonzero(~ok).tolist()
            decoded = self.codec.decode_batch(NAME, [items[i] for i in left])
            for i, rec in zip(left, decoded, strict=True):
                _put(cols, i, rec)
        return cols


def _placeholders(n: int) -> ReadingColumns:
    """Columns of ``n`` items none of which is read yet (each is then the codec's)."""
    text = [""] * n
    return ReadingColumns(
        reading_id=text.copy(),
        device_id=text.copy(),
        device_type=text.copy(),
        sensor_id=text.copy(),
        capability=text.copy(),
        value=[0.0] * n,
        unit=text.copy(),
        timestamp=[0] * n,
        sequence=[0] * n,
        quality=text.copy(),
        tenant_id=text.copy(),
        attributes=[_NO_ATTRIBUTES] * n,
        scenario=text.copy(),
        phase=text,
        values=np.full(n, np.nan),
        times=np.zeros(n, np.int64),
        id_bytes=np.full(n, -1, np.int64),
        key_bytes=np.full(n, -1, np.int64),
        others={},
    )


def _put(cols: ReadingColumns, i: int, rec: dict[str, Any] | DecodeError) -> None:
    """Item ``i`` as the codec read it: its record (or error) and its columns' entries."""
    cols.others[i] = rec
    cols.id_bytes[i] = cols.key_bytes[i] = -1  # checked one by one
    if isinstance(rec, DecodeError):
        cols.values[i], cols.times[i] = np.nan, 0
        return
    label = rec.get("label") or {}
    for name, value in (
        ("reading_id", rec["reading_id"]),
        ("device_id", rec["device_id"]),
        ("device_type", rec["device_type"]),
        ("sensor_id", rec["sensor_id"]),
        ("capability", rec["capability"]),
        ("value", rec["value"]),
        ("unit", rec["unit"]),
        ("timestamp", rec["timestamp"]),
        ("sequence", rec["sequence"]),
        ("quality", rec["quality"]),
        ("tenant_id", rec["tenant_id"]),
        ("attributes", rec.get("attributes") or _NO_ATTRIBUTES),
        ("scenario", label.get("scenario", "")),
        ("phase", label.get("phase", "")),
    ):
        getattr(cols, name)[i] = value
    value, ts = rec["value"], rec["timestamp"]
    cols.values[i] = value if type(value) is float else np.nan
    cols.times[i] = ts if type(ts) is int and -(2**63) <= ts < 2**63 else 0
