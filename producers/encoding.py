"""Fast Avro encoding of a fleet tick, checked byte for byte against :class:`AvroCodec`.

Only the value, the timestamp, the sequence and the label change between ticks, so each
record is a join of pre-encoded pieces. The first record of every encoder is encoded by the
codec too; the two must agree (that also yields the codec's header, whatever its mode).
A tick whose rows carry their own event times or sequences (clock and delivery faults)
takes a per-row path; a tick without takes the shared-timestamp path, as fast as before.
"""

from __future__ import annotations

import struct

import numpy as np

from producers.fleet import Fleet, FleetTick
from schemas import AvroCodec, load_schema

__all__ = ["READING_SCHEMA", "TickEncoder", "avro_long", "avro_string"]

READING_SCHEMA = "UniversalSensorReading"


def avro_long(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def avro_string(s: str) -> bytes:
    b = s.encode()
    return avro_long(len(b)) + b


def _symbols(schema: dict, field_name: str) -> dict[str, int]:
    for f in schema["fields"]:
        if f["name"] == field_name:
            return {s: i for i, s in enumerate(f["type"]["symbols"])}
    msg = f"{READING_SCHEMA} has no enum field {field_name!r}"
    raise KeyError(msg)


class TickEncoder:
    """Encodes the ticks of one fleet; ``encode(tick, seq)`` -> (keys, values)."""

    def __init__(self, fleet: Fleet, codec: AvroCodec, tenant_id: str = "default") -> None:
        schema = load_schema(READING_SCHEMA)
        dtypes, caps = _symbols(schema, "device_type"), _symbols(schema, "capability")
        phases = {p: i for i, p in enumerate(("NORMAL", "PRECURSOR", "FAILURE"))}
        st = fleet.static
        self._sensor = np.array([s.encode() for s in st.sensors], dtype=object)
        self._mid = np.array(
            [
                avro_string(d) + avro_long(dtypes[t]) + avro_string(s) + avro_long(caps[c])
                for d, t, s, c in zip(
                    st.device_ids, st.device_types, st.sensors, st.capabilities, strict=True
                )
            ],
            dtype=object,
        )
        self._unit = np.array([avro_string(u) for u in st.units], dtype=object)
        self._keys = np.array([d.encode() for d in st.device_ids], dtype=object)
        self._labels = np.array(
            [b"\x00"]
            + [
                b"\x02" + avro_string(lb["scenario"]) + avro_long(phases[lb["phase"]])
                for lb in st.labels[1:]
                if lb
            ],
            dtype=object,
        )
        self._tenant_id = tenant_id
        self._tenant = avro_string(tenant_id)
        self._codec = codec
        self._pack = struct.Struct("<d").pack
        self._header = self._codec_header(fleet)
        self._pre: dict[int, np.ndarray] = {}  # len(b"@" + ts digits) -> prefix per row

    def _codec_header(self, fleet: Fleet) -> bytes:
        """The codec's framing (single-object or Confluent), checked on a row of this fleet."""
        st = fleet.static
        reading_id = f"{st.sensors[0]}@0"
        record: dict[str, object] = {
            "reading_id": reading_id,
            "device_id": st.device_ids[0],
            "device_type": st.device_types[0],
            "sensor_id": st.sensors[0],
            "capability": st.capabilities[0],
            "value": 1.5,
            "unit": st.units[0],
            "timestamp": 0,
            "sequence": 0,
            "tenant_id": self._tenant_id,
            "label": st.labels[-1],
        }
        reference = self._codec.encode_batch(READING_SCHEMA, [record])[0]
        tail = avro_long(0) + avro_long(0) + b"\x00" + self._tenant + b"\x00"
        body = (
            avro_string(reading_id)
            + self._mid[0]
            + self._pack(1.5)
            + self._unit[0]
            + tail
            + self._labels[-1]
        )
        if not reference.endswith(body):
            msg = "fast reading encoder disagrees with AvroCodec (schema changed?)"
            raise RuntimeError(msg)
        return reference[: len(reference) - len(body)]

    def encode(self, tick: FleetTick, seq: int) -> tuple[list[bytes], list[bytes]]:
        """Kafka keys (device ids) and Avro values of the tick's readings."""
        if tick.row_ts_ms is not None or tick.late_ticks is not None:
            return self._encode_rows(tick, seq)
        at = b"@" + str(tick.ts_ms).encode()
        tail = avro_long(tick.ts_ms) + avro_long(seq) + b"\x00" + self._tenant + b"\x00"
        rows = tick.rows
        pack = self._pack
        join = b"".join
        values = [
            join((p, at, m, pack(v), u, tail, lb))
            for p, m, v, u, lb in zip(
                self._prefixes(len(at))[rows].tolist(),
                self._mid[rows].tolist(),
                tick.value_array.tolist(),
                self._unit[rows].tolist(),
                self._labels[tick.label_codes].tolist(),
                strict=True,
            )
        ]
        return self._keys[rows].tolist(), values

    def _prefixes(self, at_len: int) -> np.ndarray:
        """Header + reading-id string up to ``@``, per row: its length prefix counts ``at``."""
        pre = self._pre.get(at_len)
        if pre is None:
            h = self._header
            pre = self._pre[at_len] = np.array(
                [h + avro_long(len(s) + at_len) + s for s in self._sensor.tolist()], dtype=object
            )
        return pre

    def _encode_rows(self, tick: FleetTick, seq: int) -> tuple[list[bytes], list[bytes]]:
        """Like :meth:`encode`, with each row's own event time and sequence number."""
        end = b"\x00" + self._tenant + b"\x00"
        stamps: dict[tuple[int, int], tuple[bytes, bytes]] = {}  # rows often share a stamp
        at_len = len(str(tick.ts_ms)) + 1  # every plausible stamp has as many digits
        pack = self._pack
        join = b"".join
        rows = tick.rows
        values = []
        for p, r, m, v, u, lb, ts, sq in zip(
            self._prefixes(at_len)[rows].tolist(),
            rows.tolist(),
            self._mid[rows].tolist(),
            tick.value_array.tolist(),
            self._unit[rows].tolist(),
            self._labels[tick.label_codes].tolist(),
            tick.timestamps,
            tick.sequences(seq),
            strict=True,
        ):
            stamp = stamps.get((ts, sq))
            if stamp is None:
                stamp = stamps[ts, sq] = (
                    b"@" + str(ts).encode(),
                    avro_long(ts) + avro_long(sq) + end,
                )
            at, tail = stamp
            if len(at) != at_len:
                p = self._prefixes(len(at))[r]
            values.append(join((p, at, m, pack(v), u, tail, lb)))
        return self._keys[rows].tolist(), values
