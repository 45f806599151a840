"""``/api/v1/alerts``: list, one alert's history of versions, and operator feedback."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query

from api import queries
from api.auth import Principal, require
from api.context import ApiContext, context_of
from api.models import AlertHistory, AlertList, Feedback, FeedbackAccepted
from core.errors import EnviroStreamError
from producers.feedback import parse_alert_id, produce_feedback

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
Ctx = Annotated[ApiContext, Depends(context_of)]
Reader = Annotated[Principal, Depends(require("read"))]
Operator = Annotated[Principal, Depends(require("operate"))]
State = Literal["FIRING", "ACKNOWLEDGED", "RESOLVED"]
Severity = Literal["INFO", "WARNING", "CRITICAL"]


@router.get("", response_model=AlertList)
def list_alerts(
    ctx: Ctx,
    who: Reader,
    state: State | None = None,
    severity: Severity | None = None,
    device_id: str = "",
    start_ms: int = 0,
    end_ms: int = queries.END_OF_TIME_MS,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> dict[str, Any]:
    """The latest version of each alert, newest first (``start_ms``/``end_ms``: overlap)."""
    params = {
        "tenant": who.tenant_id,
        "state": state or "",
        "severity": severity or "",
        "device": device_id,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "limit": limit,
    }
    return {"alerts": queries.alert_rows(ctx.client(), params)}


@router.get("/history", response_model=AlertHistory)
def alert_history(
    ctx: Ctx,
    who: Reader,
    alert_id: Annotated[str, Query(min_length=1, description="TENANT/DEVICE/GROUP@MS")],
) -> dict[str, Any]:
    """Every stored version of one alert, oldest first (404 when the tenant has none)."""
    versions = queries.alert_versions(ctx.client(), who.tenant_id, alert_id)
    if not versions:
        raise HTTPException(404, detail=f"no alert {alert_id!r} in this tenant")
    return {"versions": versions}


@router.post("/feedback", status_code=202, response_model=FeedbackAccepted)
def post_feedback(body: Feedback, ctx: Ctx, who: Operator) -> dict[str, Any]:
    """Acknowledge an alert or mark it a false positive (scope ``operate``).

    The record goes to ``telemetry.alerts.feedback`` exactly as from
    ``envirostream alerts ack|false-positive``; the worker owning the device applies it.
    """
    try:
        tenant, _device = parse_alert_id(body.alert_id)
    except EnviroStreamError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    found = tenant == who.tenant_id and queries.alert_exists(
        ctx.client(), who.tenant_id, body.alert_id
    )
    if not found:
        raise HTTPException(404, detail=f"no alert {body.alert_id!r} in this tenant")
    try:
        produce_feedback(
            ctx.settings, body.alert_id, body.action, operator=body.operator, comment=body.comment
        )
    except EnviroStreamError as exc:
        raise HTTPException(503, detail=f"feedback not sent: {exc}") from None
    return {"accepted": True}
