"""Which sink the worker writes to, chosen from the settings: the one place sinks are built.

``open_sink(settings)`` hands out the configured :class:`~sinks.base.BatchingSink`, in the
way clickhouse-connect's ``get_client()`` hands out clients: the worker never names an
implementation. Today there is one, ClickHouse (the embedded store or a server, chosen by
``ENVIROSTREAM_CLICKHOUSE_URL``); another destination is a module with a ``BatchingSink``
subclass and one entry in :data:`SINK_KINDS`.
"""

from __future__ import annotations

from collections.abc import Callable

from core.settings import Settings
from sinks.base import BatchingSink
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client

__all__ = ["SINK_KINDS", "open_sink"]


def _clickhouse(settings: Settings) -> BatchingSink:
    # An insert that hangs (a stalled store) fails after ENVIROSTREAM_SINK_TIMEOUT_SECONDS
    # and is retried, instead of holding the worker for the driver's default 300 s.
    client = get_client(settings, send_receive_timeout=settings.sink_timeout_seconds)
    return ClickHouseSink(client, settings)


SINK_KINDS: dict[str, Callable[[Settings], BatchingSink]] = {"clickhouse": _clickhouse}


def open_sink(settings: Settings, kind: str = "clickhouse") -> BatchingSink:
    """The sink of ``kind``, connected and set up (its tables exist when this returns)."""
    try:
        build = SINK_KINDS[kind]
    except KeyError:
        msg = f"unknown sink {kind!r}; known sinks: {sorted(SINK_KINDS)}"
        raise ValueError(msg) from None
    sink = build(settings)
    sink.setup()
    return sink
