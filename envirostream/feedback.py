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
import sys

from core.errors import EnviroStreamError
from core.settings import Settings
from producers.feedback import ACTIONS, parse_alert_id, produce_feedback

__all__ = ["ACTIONS", "list_alerts", "parse_alert_id", "send_feedback"]


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
    if action not in ACTIONS:
        msg = f"unknown feedback action {action!r}; expected one of {', '.join(ACTIONS)}"
        raise EnviroStreamError(msg)
    parse_alert_id(alert_id)
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
    return produce_feedback(
        settings, alert_id, action, operator=operator, comment=comment, now_ms=now_ms
    )
