"""The store client of the operator commands (``keys``, ``assets``): the embedded store is
started if needed and the tables (operator ones included) are set up."""

from __future__ import annotations

from typing import Any

from core.settings import Settings

__all__ = ["operator_client", "store_client"]


def store_client(settings: Settings) -> Any:
    """A client on the configured store whose tables (operator ones too) exist."""
    from sinks.clickhouse import ClickHouseSink
    from sinks.client import get_client

    client = get_client(settings)
    ClickHouseSink(client, settings).setup()
    return client


def operator_client(settings: Settings) -> Any:
    """:func:`store_client`, starting the embedded store first when it does not run."""
    from infra.store import start_store

    start_store(settings)
    return store_client(settings)
