"""API keys: random secrets bound to a tenant and a scope, stored only as their SHA-256.

A key is ``es_`` + 32 random bytes (URL-safe base64), shown once when created. The
``api_keys`` table (``sinks.operator_ddl``) holds its id, tenant, scope, name, times and the
hex SHA-256 of the key. A plain, unsalted hash is enough because the key is 256 random bits:
no dictionary or rainbow table covers that space, and a slow password hash (bcrypt, argon2)
would only add latency to every request (docs/api.md says more).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal, cast

from core.errors import EnviroStreamError
from core.tenants import check_tenant

__all__ = [
    "KEY_PREFIX",
    "SCOPES",
    "KeyRecord",
    "Scope",
    "create_key",
    "find_key",
    "hash_key",
    "list_keys",
    "new_key",
    "revoke_key",
]

KEY_PREFIX = "es_"
Scope = Literal["read", "operate", "admin"]
# Each scope with the ones it implies: operate includes read, admin includes both.
SCOPES: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "operate": frozenset({"read", "operate"}),
    "admin": frozenset({"read", "operate", "admin"}),
}
_COLUMNS = (
    "key_id", "key_hash", "tenant_id", "name", "scope", "created_at", "revoked_at", "updated_at",
)  # fmt: skip


@dataclass(frozen=True)
class KeyRecord:
    """One key as stored (never the key itself)."""

    key_id: str
    tenant_id: str
    name: str
    scope: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def hash_key(key: str) -> str:
    """The hex SHA-256 of ``key``, as stored in ``api_keys.key_hash``.

    >>> hash_key("es_x")[:16]
    '27026c59662b4ed9'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh ``(key_id, key)``: the id is public (it names the key in lists and logs)."""
    return "k_" + secrets.token_hex(6), KEY_PREFIX + secrets.token_urlsafe(32)


def _check(tenant: str, scope: str, name: str) -> None:
    if scope not in SCOPES:
        msg = f"unknown scope {scope!r}; expected one of {', '.join(SCOPES)}"
        raise EnviroStreamError(msg)
    try:
        check_tenant(tenant)
    except ValueError as exc:
        raise EnviroStreamError(str(exc)) from None
    if not name.strip():
        msg = "a key needs a --name saying who or what uses it"
        raise EnviroStreamError(msg)


def create_key(
    client: Any, tenant: str, scope: str, name: str, now: dt.datetime | None = None
) -> tuple[KeyRecord, str]:
    """Store a new key of ``tenant`` with ``scope``; returns its record and the key (once)."""
    _check(tenant, scope, name)
    key_id, key = new_key()
    at = now or dt.datetime.now(dt.UTC)
    client.insert(
        "api_keys",
        [[key_id, hash_key(key), tenant, name, scope, at, None, at]],
        column_names=list(_COLUMNS),
    )
    return KeyRecord(key_id, tenant, name, scope, at, None), key


_SELECT = "SELECT key_id, tenant_id, name, scope, created_at, revoked_at FROM api_keys FINAL "


def _record(row: tuple[Any, ...]) -> KeyRecord:
    return KeyRecord(str(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4], cast(Any, row[5]))


def list_keys(client: Any) -> list[KeyRecord]:
    """Every key (revoked ones too), oldest first."""
    rows = client.query(_SELECT + "ORDER BY created_at, key_id").result_rows
    return [_record(r) for r in rows]


def find_key(client: Any, key: str) -> KeyRecord | None:
    """The record of ``key`` (looked up by its hash), or None for an unknown key."""
    rows = client.query(
        _SELECT + "WHERE key_hash = {hash:String} LIMIT 1", parameters={"hash": hash_key(key)}
    ).result_rows
    return _record(rows[0]) if rows else None


def revoke_key(client: Any, key_id: str, now: dt.datetime | None = None) -> KeyRecord:
    """Mark ``key_id`` revoked (a newer row); raises when there is no such key."""
    rows = client.query(
        "SELECT key_id, key_hash, tenant_id, name, scope, created_at, revoked_at "
        "FROM api_keys FINAL WHERE key_id = {id:String}",
        parameters={"id": key_id},
    ).result_rows
    if not rows:
        msg = f"no API key {key_id!r}; `envirostream keys list` shows the ids"
        raise EnviroStreamError(msg)
    kid, key_hash, tenant, name, scope, created, revoked = rows[0]
    at = now or dt.datetime.now(dt.UTC)
    if revoked is None:
        client.insert(
            "api_keys",
            [[kid, key_hash, tenant, name, scope, created, at, at]],
            column_names=list(_COLUMNS),
        )
        revoked = at
    return KeyRecord(kid, tenant, name, scope, created, revoked)
