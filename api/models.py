"""Request and response bodies of the API (they are its OpenAPI schema at ``/docs``)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "Alert",
    "AlertHistory",
    "AlertList",
    "Anomaly",
    "AnomalyList",
    "Asset",
    "Device",
    "DeviceDetail",
    "DeviceList",
    "Feedback",
    "FeedbackAccepted",
    "Fleet",
    "Health",
    "Point",
    "Series",
]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    store: bool = Field(description="Whether the ClickHouse store answered.")


class Device(BaseModel):
    device_id: str
    device_type: str
    site: str = Field(description="From the asset registry; `unknown` when not registered.")
    model: str
    location: str
    tags: list[str]
    last_seen_ms: int | None = Field(description="Newest reading's event time; null: none.")
    open_alerts: int


class DeviceList(BaseModel):
    devices: list[Device]


class DeviceDetail(Device):
    install_date: str | None = Field(description="YYYY-MM-DD, from the asset registry.")
    capabilities: list[str]


class Asset(BaseModel):
    """One device's registry entry (``PUT /api/v1/devices/{device_id}/asset``)."""

    site: str = ""
    location: str = ""
    model: str = ""
    install_date: dt.date | None = None
    tags: list[str] = Field(default_factory=list)


class Point(BaseModel):
    ts_ms: int
    capability: str
    value: float
    min: float
    max: float
    count: int


class Series(BaseModel):
    resolution: Literal["raw", "minute", "hour"]
    points: list[Point]
    truncated: bool = Field(description="True when the point limit cut the series short.")


class Anomaly(BaseModel):
    ts_ms: int
    capability: str
    detector: str
    score: float
    threshold: float
    value: float


class AnomalyList(BaseModel):
    anomalies: list[Anomaly]


class Alert(BaseModel):
    alert_id: str
    alert_key: str
    device_id: str
    device_type: str
    capability: str
    rule: str
    severity: str
    state: str
    first_seen_ms: int
    last_seen_ms: int
    resolved_at_ms: int | None
    duplicates: int
    summary: str
    version: int
    site: str
    attributes: dict[str, str]


class AlertList(BaseModel):
    alerts: list[Alert]


class AlertHistory(BaseModel):
    versions: list[Alert]


class Feedback(BaseModel):
    alert_id: str = Field(description="TENANT/DEVICE/GROUP@FIRST_SEEN_MS")
    action: Literal["ack", "false-positive"]
    operator: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)


class FeedbackAccepted(BaseModel):
    accepted: bool = True


class Fleet(BaseModel):
    devices_by_state: dict[str, int]
    silent_devices: list[Device]
    alerts_by_severity: dict[str, int] = Field(description="Open alerts per severity.")
