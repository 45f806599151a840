"""What every request shares: the settings, one store client, the key cache and the limiter.

One :class:`ApiContext` lives on ``app.state.api``. The store client is made on first use
(so the API starts, and answers ``/api/v1/health``, while the store is still coming up); the
first client also runs the sink's table setup, so a fresh store has the operator tables.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from fastapi import Request

from api.auth import KeyCache, RateLimiter, key_lookup
from core.settings import Settings

__all__ = ["ApiContext", "context_of"]


class ApiContext:
    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._client: Any = None
        self._lock = threading.Lock()
        self.keys = KeyCache(key_lookup(self.client), settings.api_key_cache_seconds, clock)
        self.limiter = RateLimiter(settings.api_rate_per_second, settings.api_rate_burst, clock)

    def client(self) -> Any:
        """The shared clickhouse-connect client (thread-safe; no session)."""
        with self._lock:
            if self._client is None:
                from api.store import store_client

                self._client = store_client(self.settings)
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def context_of(request: Request) -> ApiContext:
    """The dependency giving a route the app's :class:`ApiContext`."""
    context: ApiContext = request.app.state.api
    return context
