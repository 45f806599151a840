"""The site of each device, from the asset registry (``assets``), for the Alertmanager labels.

The forwarder asks for one site per alert it posts; the whole registry's sites (one short
row per registered device) are read at most every ``ttl`` seconds, so a registry change
reaches the labels within a minute and a store that does not answer costs one failed read a
minute, never a post: the sites last read (or none: ``unknown``) are used meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from core.settings import Settings

__all__ = ["AssetSites"]

log = logging.getLogger(__name__)

_SITES = "SELECT tenant_id, device_id, site FROM assets FINAL WHERE site != ''"


class AssetSites:
    """``site(tenant, device)`` from ``assets``, re-read every ``ttl`` seconds.

    >>> class Client:
    ...     def query(self, sql):
    ...         return type("R", (), {"result_rows": [("t", "pump-1", "North")]})()
    >>> sites = AssetSites(Client, ttl=60)
    >>> sites.site("t", "pump-1"), sites.site("t", "pump-2"), sites.site("u", "pump-1")
    ('North', None, None)
    """

    def __init__(
        self,
        client_of: Callable[[], Any],
        ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_of = client_of
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._sites: dict[tuple[str, str], str] = {}
        self._read_at: float | None = None

    @classmethod
    def from_settings(cls, settings: Settings, ttl: float = 60.0) -> AssetSites:
        """Sites read from the configured store through a client of their own, made on the
        first read (the forwarder's thread), with a short timeout."""
        from sinks.client import get_client

        made: list[Any] = []

        def client_of() -> Any:
            if not made:
                made.append(get_client(settings, send_receive_timeout=10))
            return made[0]

        return cls(client_of, ttl)

    def site(self, tenant: str, device: str) -> str | None:
        """The registered site of ``device`` of ``tenant``, or None when it has none."""
        with self._lock:
            now = self._clock()
            if self._read_at is None or now - self._read_at >= self._ttl:
                self._read_at = now
                self._refresh()
            return self._sites.get((tenant, device))

    def _refresh(self) -> None:
        try:
            rows = self._client_of().query(_SITES).result_rows
        except Exception as exc:  # any store failure: keep the sites last read
            log.warning("asset registry not read (%s); alert sites as last read", exc)
            return
        self._sites = {(str(t), str(d)): str(s) for t, d, s in rows}
