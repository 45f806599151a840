"""Keys, scopes, the key cache and the rate limiter, without a store or a server."""

from __future__ import annotations

import datetime as dt

import pytest

from api.auth import KeyCache, RateLimiter, require
from api.keys import SCOPES, KeyRecord, hash_key, new_key

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_scopes_nest_read_in_operate_in_admin() -> None:
    assert SCOPES["read"] < SCOPES["operate"] < SCOPES["admin"]


def test_new_keys_are_random_prefixed_and_hashed_hex() -> None:
    (id1, k1), (id2, k2) = new_key(), new_key()
    assert id1 != id2 and k1 != k2
    assert k1.startswith("es_") and len(k1) >= 43 + 3
    assert hash_key(k1) != hash_key(k2) and len(hash_key(k1)) == 64
    assert k1 not in hash_key(k1)


def test_unknown_scope_is_refused_when_the_route_is_declared() -> None:
    with pytest.raises(ValueError, match="unknown scope 'write'"):
        require("write")


class Lookups:
    def __init__(self) -> None:
        self.calls = 0
        self.revoked: dt.datetime | None = None

    def __call__(self, key: str) -> KeyRecord | None:
        self.calls += 1
        if key != "es_good":
            return None
        return KeyRecord("k_1", "t", "n", "read", T0, self.revoked)


def test_the_cache_rereads_a_key_after_its_ttl_so_revocation_takes_effect() -> None:
    now = [0.0]
    lookups = Lookups()
    cache = KeyCache(lookups, ttl=3.0, clock=lambda: now[0])
    record = cache.get("es_good")
    assert record is not None and not record.revoked
    lookups.revoked = T0
    now[0] = 2.9
    record = cache.get("es_good")
    assert record is not None and not record.revoked and lookups.calls == 1
    now[0] = 3.1
    record = cache.get("es_good")
    assert record is not None and record.revoked and lookups.calls == 2


def test_unknown_keys_are_cached_too() -> None:
    lookups = Lookups()
    cache = KeyCache(lookups, ttl=5.0, clock=lambda: 0.0)
    assert cache.get("es_bad") is None and cache.get("es_bad") is None
    assert lookups.calls == 1


def test_the_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=10.0, burst=5, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(5)] == [0.0] * 5
    assert limiter.take("k") == pytest.approx(0.1)
    now[0] = 100.0  # a long pause saves up no more than the burst
    assert sum(limiter.take("k") == 0.0 for _ in range(10)) == 5
