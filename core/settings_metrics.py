"""The metrics part of :class:`core.settings.Settings`: where each process serves
``/metrics`` and how the worker samples its health (lag, silent devices).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

__all__ = ["MetricsSettings"]


class MetricsSettings(BaseSettings):
    """``/metrics`` addresses and ports, and the worker's health sampling."""

    metrics_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address the /metrics of the worker, simulator and replay listen on "
        "(loopback; `0.0.0.0` opens them to the network, as compose does in containers).",
    )
    metrics_port: int = Field(default=9464, ge=0, le=65535, description="Worker /metrics; 0=off.")
    simulator_metrics_port: int = Field(
        default=9466, ge=0, le=65535, description="/metrics of the simulator; 0=off."
    )
    silent_device_seconds: float = Field(
        default=300.0,
        gt=0,
        description="A device with no reading for this long counts as silent "
        "(envirostream_devices_silent).",
    )
    health_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="How often the worker samples consumer lag and silent devices.",
    )
    replay_metrics_port: int = Field(
        default=9467, ge=0, le=65535, description="/metrics of `envirostream replay`; 0=off."
    )
