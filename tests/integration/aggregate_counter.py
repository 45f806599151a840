"""A user agent module for the worker (``ENVIROSTREAM_WORKER_AGENTS``), used by
test_worker_agents.py: it counts the ``WindowAggregate`` records the worker produces.

What it has seen is written to ``aggregates-seen.json`` in the Faust app's data directory
(``ENVIROSTREAM_DATA_DIR/faust``), so the test can read it from outside the process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import faust

from schemas import AvroCodec
from topics import AGGREGATES

__all__ = ["SEEN_FILE", "register"]

SEEN_FILE = "aggregates-seen.json"


def register(app: faust.App) -> None:
    codec = AvroCodec()
    topic = app.topic(AGGREGATES, key_serializer="raw", value_serializer="raw")
    out = Path(app.conf.datadir) / SEEN_FILE
    seen: set[tuple[str, str, str]] = set()
    count = {"records": 0}

    @app.agent(topic)
    async def count_aggregates(stream: Any) -> None:
        async for values in stream.take(1000, within=0.5):
            for value in values:
                agg = codec.decode(value, "WindowAggregate")
                seen.add((agg["device_id"], agg["capability"], str(agg["window_start"])))
                count["records"] += 1
            out.write_text(json.dumps({"records": count["records"], "windows": sorted(seen)}))
