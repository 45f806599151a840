"""``envirostream query``: ClickHouse SQL against the configured store, while the pipeline runs.

Read-only unless asked: the query is sent with ClickHouse's ``readonly=1`` setting, which
the embedded store and a server both enforce (SELECT, SHOW, DESCRIBE, EXISTS, EXPLAIN run;
DDL and DML are refused). ``--write`` sends it without, for a deliberate change.
"""

from __future__ import annotations

from clickhouse_connect.driver.exceptions import DatabaseError

from core.errors import EnviroStreamError
from core.settings import Settings
from sinks.client import get_client

__all__ = ["QueryError", "run_query"]


class QueryError(EnviroStreamError):
    """ClickHouse refused the query; the message is the server's."""


READ_ONLY = {"readonly": 1}
_READONLY_CODE = "Code: 164"  # ClickHouse's READONLY exception


def run_query(settings: Settings, sql: str, fmt: str = "PrettyCompact", write: bool = False) -> str:
    """Run ``sql`` and return the server's text output in ``fmt``; read-only unless ``write``.

    With the embedded store, the store is started if it is not running (the data stays
    queryable after ``envirostream up`` stopped everything it started).
    """
    if settings.uses_local_store:
        from infra.store import start_store

        start_store(settings)
    client = get_client(settings)
    try:
        result = client.raw_query(sql, fmt=fmt, settings=None if write else READ_ONLY)
    except DatabaseError as exc:
        # The server's own message (code, text) is what the user needs; no traceback.
        text = str(exc).split("server response: ", 1)[-1].split(" (for url", 1)[0]
        if not write and _READONLY_CODE in text:
            text = (
                "refused: envirostream query is read-only by default; pass --write to run "
                f"DDL or DML (CREATE, DROP, INSERT, ALTER, ...) on purpose.\n{text}"
            )
        raise QueryError(text) from exc
    text = result.decode("utf-8", errors="replace")
    return text if text.endswith("\n") or not text else text + "\n"
