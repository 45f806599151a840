"""Who is calling: API keys to :class:`Principal`, scopes, and the per-key rate limit.

``require(scope)`` is the FastAPI dependency every protected route declares
(``Depends(require("read"))``). It reads the key from ``Authorization: Bearer <key>`` or
``X-API-Key``, looks it up (through a short-lived cache, so a revoked key stops working
within ``ENVIROSTREAM_API_KEY_CACHE_SECONDS``), checks the scope and takes one token from
the key's bucket. Missing, unknown or revoked key: 401; scope too small: 403; bucket empty:
429 with ``Retry-After``. Each answer's ``detail`` says what to do.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request

from api.keys import SCOPES, KeyRecord, find_key, hash_key

__all__ = ["KeyCache", "Principal", "RateLimiter", "key_lookup", "principal_of", "require"]


@dataclass(frozen=True)
class Principal:
    """The caller behind a valid key: its tenant, the key's id and name, and its scopes."""

    tenant_id: str
    key_id: str
    name: str
    scopes: frozenset[str]


class KeyCache:
    """Key lookups, remembered for ``ttl`` seconds (unknown keys too, so guessing is cheap)."""

    def __init__(
        self,
        lookup: Callable[[str], KeyRecord | None],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, KeyRecord | None]] = {}

    def get(self, key: str) -> KeyRecord | None:
        digest = hash_key(key)  # the cache never holds a key in clear either
        now = self._clock()
        with self._lock:
            hit = self._entries.get(digest)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        record = self._lookup(key)
        with self._lock:
            if len(self._entries) > 10_000:  # bounded: forget everything rather than grow
                self._entries.clear()
            self._entries[digest] = (now, record)
        return record


class RateLimiter:
    """A token bucket per key: ``rate`` tokens a second, at most ``burst`` saved up.

    >>> t = [0.0]
    >>> limiter = RateLimiter(rate=2.0, burst=2, clock=lambda: t[0])
    >>> [limiter.take("k") for _ in range(3)]
    [0.0, 0.0, 0.5]
    >>> t[0] = 0.5
    >>> limiter.take("k"), limiter.take("other")
    (0.0, 0.0)
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)

    def take(self, key_id: str) -> float:
        """Take one token: 0.0 when granted, else the seconds until one is available."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = request.headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def principal_of(request: Request) -> Principal:
    """The caller of ``request`` (401 without a valid key); no scope or rate check."""
    context: Any = request.app.state.api
    key = _presented_key(request)
    if key is None:
        msg = (
            "missing API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>` "
            "(an admin creates keys with `envirostream keys create`)"
        )
        raise _unauthorized(msg)
    record = context.keys.get(key)
    if record is None:
        msg = "unknown API key: check the key, or ask an admin for a new one"
        raise _unauthorized(msg)
    if record.revoked:
        msg = f"API key {record.key_id} was revoked; ask an admin for a new one"
        raise _unauthorized(msg)
    return Principal(record.tenant_id, record.key_id, record.name, SCOPES[record.scope])


def require(scope: str) -> Callable[[Request], Principal]:
    """The dependency admitting keys with ``scope`` (``read`` ⊂ ``operate`` ⊂ ``admin``)."""
    if scope not in SCOPES:
        msg = f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}"
        raise ValueError(msg)

    def dependency(request: Request) -> Principal:
        principal = principal_of(request)
        if scope not in principal.scopes:
            held = max(principal.scopes, key=lambda s: len(SCOPES[s]))
            raise HTTPException(
                403,
                detail=f"this needs an API key with scope {scope!r}; key "
                f"{principal.key_id} has {held!r}",
            )
        wait = request.app.state.api.limiter.take(principal.key_id)
        if wait > 0:
            raise HTTPException(
                429,
                detail=f"rate limit of key {principal.key_id} exceeded "
                f"(ENVIROSTREAM_API_RATE_PER_SECOND); retry in {wait:.2f}s",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        return principal

    return dependency


def key_lookup(client_of: Callable[[], Any]) -> Callable[[str], KeyRecord | None]:
    """A lookup function for :class:`KeyCache` reading ``api_keys`` through ``client_of()``."""
    return lambda key: find_key(client_of(), key)
