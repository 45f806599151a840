"""``/api/v1/health`` (no key) and ``/api/v1/fleet``: devices by state, silent devices,
open alerts by severity."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from api import queries
from api.auth import Principal, require
from api.context import ApiContext, context_of
from api.models import Fleet, Health
from api.routes_devices import device_list

__all__ = ["device_state", "router"]

router = APIRouter(prefix="/api/v1", tags=["fleet"])
Ctx = Annotated[ApiContext, Depends(context_of)]


@router.get("/health", response_model=Health)
def health(ctx: Ctx) -> dict[str, Any]:
    """Liveness, and whether the store answers (no key needed)."""
    try:
        ok = int(ctx.client().command("SELECT 1")) == 1
    except Exception:  # any failure to reach the store is "store": false, not a 500
        ok = False
    return {"status": "ok", "store": ok}


def device_state(device: dict[str, Any], now_ms: int, silent_ms: int) -> str:
    """``silent`` (no reading for ``silent_ms``), else ``alerting`` (open alerts), else ``ok``.

    >>> device_state({"last_seen_ms": 0, "open_alerts": 2}, 10_000, 5_000)
    'silent'
    >>> device_state({"last_seen_ms": 9_000, "open_alerts": 2}, 10_000, 5_000)
    'alerting'
    """
    seen = device["last_seen_ms"]
    if seen is None or now_ms - seen > silent_ms:
        return "silent"
    return "alerting" if device["open_alerts"] else "ok"


@router.get("/fleet", response_model=Fleet)
def fleet(ctx: Ctx, who: Annotated[Principal, Depends(require("read"))]) -> dict[str, Any]:
    """Silent: no reading for ``ENVIROSTREAM_SILENT_DEVICE_SECONDS``."""
    client = ctx.client()
    now_ms = int(time.time() * 1000)
    silent_ms = int(ctx.settings.silent_device_seconds * 1000)
    by_state = {"ok": 0, "alerting": 0, "silent": 0}
    silent = []
    for device in device_list(client, who.tenant_id):
        state = device_state(device, now_ms, silent_ms)
        by_state[state] += 1
        if state == "silent":
            silent.append(device)
    return {
        "devices_by_state": by_state,
        "silent_devices": silent,
        "alerts_by_severity": queries.open_alerts_by_severity(client, who.tenant_id),
    }
