"""``envirostream query``: ClickHouse SQL against the configured store, while the pipeline runs."""

from __future__ import annotations

from clickhouse_connect.driver.exceptions import DatabaseError

from core.errors import EnviroStreamError
from core.settings import Settings
from sinks.client import get_client

__all__ = ["QueryError", "run_query"]


class QueryError(EnviroStreamError):
    """ClickHouse refused the query; the message is the server's."""


def run_query(settings: Settings, sql: str, fmt: str = "PrettyCompact") -> str:
    """Run ``sql`` and return the server's text output in ``fmt``.

    With the embedded store, the store is started if it is not running (the data stays
    queryable after ``envirostream up`` stopped everything it started).
    """
    if settings.uses_local_store:
        from infra.store import start_store

        start_store(settings)
    client = get_client(settings)
    try:
        result = client.raw_query(sql, fmt=fmt)
    except DatabaseError as exc:
        # The server's own message (code, text) is what the user needs; no traceback.
        text = str(exc).split("server response: ", 1)[-1].split(" (for url", 1)[0]
        raise QueryError(text) from exc
    text = result.decode("utf-8", errors="replace")
    return text if text.endswith("\n") or not text else text + "\n"
