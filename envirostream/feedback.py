"""``envirostream alerts``: list alerts, acknowledge one, or mark one a false positive.

Feedback is an ``AlertFeedback`` record on ``telemetry.alerts.feedback``, keyed by the
device id so it lands on the partition number of the device's readings; the worker that owns
those readings applies it (``streams.worker.PipelineWorker.on_feedback``):

* ``ack``: a FIRING alert becomes ACKNOWLEDGED (still open; it resolves after its quiet
  period like any alert);
* ``false-positive``: the alert is RESOLVED with ``attributes['feedback'] = 'false_positive'``
  and the thresholds of the learned detectors that raised it are raised above the alert's
  score, so the same deviation does not page again. Safety limits never change.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Literal

from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = ["ACTIONS", "list_alerts", "parse_alert_id", "send_feedback"]

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


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def list_alerts(settings: Settings, *, state: str | None = None, limit: int = 50) -> str:
    """The latest version of the newest alerts, as a table (``state`` filters)."""
    from envirostream.query import run_query

    where = f"WHERE state = {_sql_string(state)} " if state else ""
    sql = (
        "SELECT alert_id, device_type, rule, severity, state, first_seen, last_seen, "
        f"duplicates, summary FROM alerts FINAL {where}"
        f"ORDER BY last_seen DESC LIMIT {int(limit)}"
    )
    return run_query(settings, sql, "PrettyCompact")


def _stored_state(settings: Settings, alert_id: str) -> str | None:
    from envirostream.query import run_query

    sql = f"SELECT state FROM alerts FINAL WHERE alert_id = {_sql_string(alert_id)}"
    rows = [json.loads(line) for line in run_query(settings, sql, "JSONEachRow").splitlines()]
    return str(rows[0]["state"]) if rows else None


def send_feedback(
    settings: Settings,
    alert_id: str,
    action: str,
    *,
    operator: str | None = None,
    comment: str = "",
    check: bool = True,
    now_ms: int | None = None,
) -> str:
    """Produce one feedback record; returns what was done (one line).

    With ``check``, the alert must exist in the ``alerts`` table (a typo would otherwise be
    applied to nothing); when the store cannot be reached the record is sent anyway, with a
    warning on stderr.
    """
    from schemas import AvroCodec
    from topics import ALERTS_FEEDBACK
    from topics.producer import RecordProducer, wait_for_broker

    if action not in ACTIONS:
        msg = f"unknown feedback action {action!r}; expected one of {', '.join(ACTIONS)}"
        raise EnviroStreamError(msg)
    tenant, device = parse_alert_id(alert_id)
    if check:
        try:
            state = _stored_state(settings, alert_id)
        except EnviroStreamError as exc:
            print(f"envirostream: warning: alert not checked ({exc})", file=sys.stderr)
        else:
            if state is None:
                msg = (
                    f"no alert {alert_id!r} in the alerts table; `envirostream alerts list` "
                    "shows them (--no-check sends the feedback anyway)"
                )
                raise EnviroStreamError(msg)
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
