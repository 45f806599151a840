"""A quick benchmark of the codec: encode, and decode by each decoder, on typical readings."""

from __future__ import annotations

import io
import time
from typing import Any

from fastavro import schemaless_reader

from schemas.codec import AvroCodec

__all__ = ["fastavro_decode", "measure_codec", "typical_readings"]

NAME = "UniversalSensorReading"


def typical_readings(n: int, devices: int = 50) -> list[dict[str, Any]]:
    """``n`` readings of ``devices`` grid devices, as the simulator writes them."""
    return [
        {
            "reading_id": f"grid-{i % devices}/temperature@{1_700_000_000_000 + i}",
            "device_id": f"grid-{i % devices}",
            "device_type": "GRID_GUARDIAN",
            "sensor_id": f"grid-{i % devices}/temperature",
            "capability": "TEMPERATURE",
            "value": 20.0 + (i % 100) / 10,
            "unit": "degC",
            "timestamp": 1_700_000_000_000 + i,
            "sequence": i,
            "quality": "GOOD",
            "tenant_id": "default",
            "attributes": {"site": "north"},
            "label": None,
        }
        for i in range(n)
    ]


def fastavro_decode(codec: AvroCodec, items: list[bytes]) -> list[dict[str, Any]]:
    """Readings (single-object, current schema) read by fastavro's ``schemaless_reader``
    one by one: the decode path before ``schemas/reading_decoder.py``, for comparisons.
    Items that are not such records are skipped."""
    parsed = codec._reader(NAME)  # noqa: SLF001 - the parsed schema the codec reads with
    header = codec._headers[NAME]  # noqa: SLF001
    out: list[dict[str, Any]] = []
    for data in items:
        if data[:10] == header:
            buf = io.BytesIO(data)
            buf.seek(10)
            out.append(schemaless_reader(buf, parsed, None))  # type: ignore[arg-type]
    return out


def measure_codec(n: int = 100_000) -> dict[str, float]:
    """Encode and decode ``n`` typical readings in one batch; records per second each way.

    ``decode_per_s`` is :meth:`AvroCodec.decode_batch` (the specialised reading decoder);
    ``fastavro_decode_per_s`` is fastavro's ``schemaless_reader`` per record, the old path.

    >>> sorted(measure_codec(100))
    ['bytes_per_record', 'decode_per_s', 'encode_per_s', 'fastavro_decode_per_s', 'n']
    """
    codec = AvroCodec()
    records = typical_readings(n)
    started = time.perf_counter()
    encoded = codec.encode_batch(NAME, records)
    encoded_at = time.perf_counter()
    codec.decode_batch(NAME, encoded)
    decoded_at = time.perf_counter()
    fastavro_decode(codec, encoded)
    fastavro_at = time.perf_counter()
    return {
        "n": float(n),
        "encode_per_s": n / max(encoded_at - started, 1e-9),
        "decode_per_s": n / max(decoded_at - encoded_at, 1e-9),
        "fastavro_decode_per_s": n / max(fastavro_at - decoded_at, 1e-9),
        "bytes_per_record": sum(map(len, encoded)) / max(n, 1),
    }
