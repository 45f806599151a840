"""The MQTT gateway part of :class:`core.settings.Settings` (``ENVIROSTREAM_MQTT_*``,
``ENVIROSTREAM_GATEWAY_*``; docs/gateway.md). The broker URL is a
:class:`~core.secrets.SecretUrl`: it prints with the password redacted.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from core.secrets import SecretUrl, redact_url

__all__ = ["GatewaySettings"]


class GatewaySettings(BaseSettings):
    """Where the MQTT gateway reads and how much it may hold."""

    # --- MQTT gateway (docs/gateway.md) ------------------------------------------------
    mqtt_url: SecretUrl | None = Field(
        default=None,
        description="mqtt(s)://user:password@host:port of the broker the gateway reads; "
        "unset = the local Mosquitto (`infra up`) with its generated gateway password.",
    )
    mqtt_port: int = Field(
        default=18830, ge=1, le=65535, description="Port of the local Mosquitto (loopback)."
    )
    mqtt_topic: str = Field(
        default="devices/+/telemetry",
        min_length=1,
        description="Topic filter the gateway subscribes to (the device id is the level "
        "before `telemetry`).",
    )
    mqtt_qos: int = Field(
        default=1,
        ge=0,
        le=1,
        description="1: a message is acknowledged only once Kafka has its readings (no "
        "loss); 0: at most once, the loss is counted.",
    )
    mqtt_max_pending_messages: int = Field(
        default=1000,
        ge=1,
        description="Messages received and not yet in Kafka above which the gateway stops "
        "reading from the broker (bounded memory while Kafka is away).",
    )
    gateway_metrics_port: int = Field(
        default=9468, ge=0, le=65535, description="/metrics of `envirostream gateway`; 0=off."
    )

    @field_validator("mqtt_url", mode="before")
    @classmethod
    def _check_mqtt_url(cls, value: object) -> object:
        if isinstance(value, SecretUrl):
            value = value.get_secret_value()
        if not isinstance(value, str) or value.strip() == "":
            return None if isinstance(value, str) else value
        if not value.startswith(("mqtt://", "mqtts://")):
            msg = f"expected an mqtt:// or mqtts:// URL, got {redact_url(value)!r}"
            raise ValueError(msg)
        return value
