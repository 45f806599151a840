"""The operator API part of :class:`core.settings.Settings` (``ENVIROSTREAM_API_*``): where
``envirostream api`` listens, how fast one key may call it and how soon a revoked key stops
working (docs/api.md)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

__all__ = ["ApiSettings"]


class ApiSettings(BaseSettings):
    """``ENVIROSTREAM_API_*``: address, per-key rate limit, key cache."""

    # --- operator API (docs/api.md) ----------------------------------------------------
    api_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address `envirostream api` (and `up`) serves the HTTP API on (loopback; "
        "`0.0.0.0` opens it to the network: put TLS in front).",
    )
    api_port: int = Field(
        default=8470,
        ge=0,
        le=65535,
        description="Port of the HTTP API; 0 = `envirostream up` does not start it.",
    )
    api_rate_per_second: float = Field(
        default=20.0,
        gt=0,
        le=100_000,
        description="Requests per second one API key may make on average (token bucket); "
        "above it the API answers 429 with Retry-After.",
    )
    api_rate_burst: int = Field(
        default=40,
        ge=1,
        le=1_000_000,
        description="Requests one API key may make at once before the rate applies "
        "(the token bucket's size).",
    )
    api_key_cache_seconds: float = Field(
        default=3.0,
        ge=0,
        le=300,
        description="How long the API trusts a key lookup before reading `api_keys` again: "
        "a revoked key stops working within this time.",
    )
