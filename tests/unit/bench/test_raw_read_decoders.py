"""The decoders ``bench decode`` and ``bench throughput`` time count the same readings."""

from __future__ import annotations

from bench.raw_read import DECODERS, NAME
from schemas import AvroCodec


def test_every_decoder_counts_the_readings_and_not_the_junk() -> None:
    codec = AvroCodec()
    good = codec.encode_batch(
        NAME,
        [
            {
                "reading_id": f"r{i}",
                "device_id": f"d{i % 3}",
                "sensor_id": f"d{i % 3}/t",
                "capability": "TEMPERATURE",
                "value": 20.0 + i,
                "timestamp": 1_767_225_600_000 + i,
                "attributes": {"site": "north"} if i == 4 else {},
            }
            for i in range(10)
        ],
    )
    counts = {name: DECODERS[name](AvroCodec())(good) for name in DECODERS}
    assert counts == {"none": 10, "fastavro": 10, "codec": 10, "columns": 10}
    values = [*good[:5], b"junk", good[5][:-4], *good[5:]]  # fastavro's reader would raise
    assert [DECODERS[name](AvroCodec())(values) for name in ("codec", "columns")] == [10, 10]
