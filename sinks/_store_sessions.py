"""Sessions of the embedded store: the chdb connection kept per ``session_id`` and the URL
settings that hold for one request only (:mod:`sinks.store` serves them)."""

from __future__ import annotations

import threading
import time
from typing import Any

from sinks._store_http import setting_literal

__all__ = ["Session", "apply_settings"]


class Session:
    """A chdb connection kept for one ``session_id`` (state such as USE/SET lives in it)."""

    def __init__(self, conn: Any, timeout: float) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.timeout = timeout
        self.used = time.monotonic()
        # URL settings applied to this connection by earlier requests (to undo them later).
        self.url_settings: dict[str, str] = {}


def apply_settings(conn: Any, session: Session | None, settings: dict[str, str]) -> None:
    """Make ``settings`` hold for this request only.

    A fresh connection is discarded after the request. A session's connection keeps its
    state, so settings a previous request passed in its URL and this one does not are reset
    to their defaults, and unchanged ones are not set again (clickhouse-connect sends the
    same few with every request).
    """
    if session is None:
        for key, value in settings.items():
            conn.query(f"SET {key} = {setting_literal(value)}")
        return
    for key in [k for k in session.url_settings if k not in settings]:
        conn.query(f"SET {key} = DEFAULT")
        del session.url_settings[key]
    for key, value in settings.items():
        if session.url_settings.get(key) != value:
            session.url_settings.pop(key, None)
            conn.query(f"SET {key} = {setting_literal(value)}")
            session.url_settings[key] = value
