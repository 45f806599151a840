"""Operator feedback on one alert, produced to ``telemetry.alerts.feedback``.

The one path by which feedback enters the pipeline: ``envirostream alerts ack|false-positive``
and the HTTP API (``POST /api/v1/alerts/feedback``) both call :func:`produce_feedback`. The
record is an ``AlertFeedback``, keyed by the device id so it lands on the partition number of
the device's readings; the worker that owns those readings applies it
(``streams.worker.PipelineWorker.on_feedback``).
"""

from __future__ import annotations

import os
import time
from typing import Literal

from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = ["ACTIONS", "parse_alert_id", "produce_feedback"]

ACTIONS: dict[str, Literal["ACK", "FALSE_POSITIVE"]] = {
    "ack": "ACK",
    "false-positive": "FALSE_POSITIVE",
}


def parse_alert_id(alert_id: str) -> tuple[str, str]:
    """``(tenant_id, device_id)`` of an alert id ``{tenant}/{device}/{group}@{first_seen ms}``.

    >>> parse_alert_id("default/bat-7/device@1700000000000")
    ('default', 'bat-7')
    """
    key, at, first_seen = alert_id.rpartition("@")
    tenant, _, rest = key.partition("/")
    device, _, group = rest.rpartition("/")
    if not (at and first_seen.isdigit() and tenant and device and group):
        msg = (
            f"{alert_id!r} is not an alert id: expected TENANT/DEVICE/GROUP@FIRST_SEEN_MS, "
            "as in the alert_id column of the alerts table (`envirostream alerts list`)"
        )
        raise EnviroStreamError(msg)
    return tenant, device


def produce_feedback(
    settings: Settings,
    alert_id: str,
    action: str,
    *,
    operator: str | None = None,
    comment: str = "",
    now_ms: int | None = None,
) -> str:
    """Produce one ``AlertFeedback`` record and wait for Kafka to have it.

    ``action`` is a key of :data:`ACTIONS`; ``operator`` defaults to ``$USER``. Returns what
    was done (one line); raises :class:`EnviroStreamError` when the action or the alert id is
    malformed or the record was not delivered.
    """
    from schemas import AvroCodec
    from topics import ALERTS_FEEDBACK
    from topics.producer import RecordProducer, wait_for_broker

    if action not in ACTIONS:
        msg = f"unknown feedback action {action!r}; expected one of {', '.join(ACTIONS)}"
        raise EnviroStreamError(msg)
    tenant, device = parse_alert_id(alert_id)
    record = {
        "alert_id": alert_id,
        "tenant_id": tenant,
        "device_id": device,
        "action": ACTIONS[action],
        "operator": operator if operator is not None else os.environ.get("USER", ""),
        "comment": comment,
        "timestamp": now_ms if now_ms is not None else int(time.time() * 1000),
    }
    wait_for_broker(settings, timeout=30)
    producer = RecordProducer(settings, linger_ms=0)
    value = AvroCodec().encode("AlertFeedback", record)
    producer.send_batch(ALERTS_FEEDBACK, [device.encode()], [value])
    if producer.flush(30) or producer.failed:
        msg = f"feedback not delivered to {ALERTS_FEEDBACK}: {producer.last_error or 'timeout'}"
        raise EnviroStreamError(msg)
    return f"{action}: {alert_id} -> {ALERTS_FEEDBACK} (key {device})"
