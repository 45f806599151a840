"""``/api/v1/devices``: the tenant's devices, one device, its series, anomalies and asset."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from api import queries
from api.assets import upsert_asset
from api.auth import Principal, require
from api.context import ApiContext, context_of
from api.models import AnomalyList, Asset, DeviceDetail, DeviceList, Series

__all__ = ["MAX_POINTS", "choose_resolution", "device_list", "router"]

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
MAX_POINTS = 2000  # per capability, for resolution=auto
_HARD_LIMIT = 200_000  # points in one answer, whatever the resolution
_DAY_MS = 86_400_000
Ctx = Annotated[ApiContext, Depends(context_of)]
Reader = Annotated[Principal, Depends(require("read"))]
Admin = Annotated[Principal, Depends(require("admin"))]


def _now_ms() -> int:
    return int(time.time() * 1000)


def device_list(client: Any, tenant: str, device: str = "") -> list[dict[str, Any]]:
    """Devices with readings or a registry entry, merged, sorted by id."""
    seen = {r["device_id"]: r for r in queries.device_rows(client, tenant, device)}
    assets = queries.asset_rows(client, tenant, device)
    open_alerts = queries.open_alert_counts(client, tenant, device)
    devices = []
    for device_id in sorted(seen.keys() | assets.keys()):
        reading = seen.get(device_id, {})
        asset = assets.get(device_id, {})
        devices.append(
            {
                "device_id": device_id,
                "device_type": reading.get("device_type", "UNKNOWN"),
                "site": asset.get("site") or "unknown",
                "model": asset.get("model", ""),
                "location": asset.get("location", ""),
                "tags": asset.get("tags", []),
                "install_date": asset.get("install_date"),
                "last_seen_ms": reading.get("last_seen_ms"),
                "open_alerts": open_alerts.get(device_id, 0),
            }
        )
    return devices


def _matches(device: dict[str, Any], q: str) -> bool:
    fields = ("device_id", "device_type", "site", "model", "location")
    text = " ".join([*(device[f] for f in fields), *device["tags"]])
    return q.lower() in text.lower()


@router.get("", response_model=DeviceList)
def list_devices(
    ctx: Ctx,
    who: Reader,
    q: Annotated[str, Query(max_length=200, description="Substring of id, site, ...")] = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    devices = [d for d in device_list(ctx.client(), who.tenant_id) if not q or _matches(d, q)]
    return {"devices": devices[:limit]}


def _one(ctx: ApiContext, tenant: str, device_id: str) -> dict[str, Any]:
    found = device_list(ctx.client(), tenant, device_id)
    if not found:
        raise HTTPException(404, detail=f"no device {device_id!r} in this tenant")
    return found[0]


@router.get("/{device_id}", response_model=DeviceDetail)
def get_device(device_id: str, ctx: Ctx, who: Reader) -> dict[str, Any]:
    device = _one(ctx, who.tenant_id, device_id)
    capabilities = queries.device_capabilities(ctx.client(), who.tenant_id, device_id)
    return {**device, "capabilities": capabilities}


def _range(start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
    end = end_ms if end_ms is not None else _now_ms()
    start = start_ms if start_ms is not None else end - _DAY_MS
    if start >= end:
        raise HTTPException(422, detail=f"start_ms ({start}) must be before end_ms ({end})")
    return start, end


def choose_resolution(raw_per_capability: int, span_ms: int, window_ms: int) -> str:
    """``auto``: raw when it fits in :data:`MAX_POINTS` a capability, else minute, else hour.

    >>> choose_resolution(1500, 3_600_000, 60_000)
    'raw'
    >>> choose_resolution(86_400, 86_400_000, 60_000)
    'minute'
    >>> choose_resolution(10**6, 30 * 86_400_000, 60_000)
    'hour'
    """
    if raw_per_capability <= MAX_POINTS:
        return "raw"
    if span_ms // window_ms <= MAX_POINTS:
        return "minute"
    return "hour"


@router.get("/{device_id}/series", response_model=Series)
def get_series(
    device_id: str,
    ctx: Ctx,
    who: Reader,
    capability: str = "",
    start_ms: int | None = None,
    end_ms: int | None = None,
    resolution: Literal["auto", "raw", "minute", "hour"] = "auto",
) -> dict[str, Any]:
    start, end = _range(start_ms, end_ms)
    settings = ctx.settings
    params = {
        "tenant": who.tenant_id,
        "device": device_id,
        "capability": capability,
        "start_ms": start,
        "end_ms": end,
        "window_size": settings.window_label,
    }
    client = ctx.client()
    chosen: str = resolution
    if resolution == "auto":
        counts = queries.raw_counts(client, params)
        chosen = choose_resolution(max(counts.values(), default=0), end - start, settings.window_ms)
    points = queries.series_rows(client, chosen, params, _HARD_LIMIT + 1)
    return {
        "resolution": chosen,
        "points": points[:_HARD_LIMIT],
        "truncated": len(points) > _HARD_LIMIT,
    }


@router.get("/{device_id}/anomalies", response_model=AnomalyList)
def get_anomalies(
    device_id: str,
    ctx: Ctx,
    who: Reader,
    capability: str = "",
    start_ms: int | None = None,
    end_ms: int | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> dict[str, Any]:
    start, end = _range(start_ms, end_ms)
    params = {
        "tenant": who.tenant_id,
        "device": device_id,
        "capability": capability,
        "start_ms": start,
        "end_ms": end,
    }
    return {"anomalies": queries.anomaly_rows(ctx.client(), params, limit)}


@router.put("/{device_id}/asset", response_model=DeviceDetail)
def put_asset(device_id: str, asset: Asset, ctx: Ctx, who: Admin) -> dict[str, Any]:
    """Register (or replace) the device's asset metadata (scope ``admin``)."""
    client = ctx.client()
    upsert_asset(client, who.tenant_id, device_id, asset, dt.datetime.now(dt.UTC))
    device = _one(ctx, who.tenant_id, device_id)
    return {**device, "capabilities": queries.device_capabilities(client, who.tenant_id, device_id)}
