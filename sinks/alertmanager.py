"""Forward device alerts (``Alert`` records of the pipeline's lifecycle) to Alertmanager.

``to_alertmanager`` is the pure mapping from one Alert record to Alertmanager's v2 API
shape; ``AlertmanagerForwarder`` keeps the firing ones, posts changes, re-posts the firing
ones before Alertmanager would time them out, retries an unreachable Alertmanager with
backoff (counted in ``envirostream_alertmanager_retries_total``) and keeps what it could not
deliver for the next flush: an alert is never dropped silently.

Labels let Alertmanager group by ``site`` (from the asset registry, ``sinks.asset_sites``)
and ``device_type`` and inhibit device alerts
(``component="device"``) while the pipeline itself is down (infra/alertmanager/).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Hashable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from core.metrics import PipelineMetrics
from core.secrets import redact_url

__all__ = ["AlertmanagerForwarder", "to_alertmanager"]

log = logging.getLogger(__name__)

COMPONENT = "device"


def _iso(when: float | datetime) -> str:
    """RFC 3339 in UTC from epoch milliseconds or an aware datetime (fastavro's decoding)."""
    if not isinstance(when, datetime):
        when = datetime.fromtimestamp(when / 1000, tz=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_alertmanager(
    alert: Mapping[str, Any], now_ms: int, hold_ms: int, site: str | None = None
) -> dict[str, Any]:
    """One Alert record as an Alertmanager v2 alert.

    A firing alert ends ``hold_ms`` after ``now_ms`` unless re-posted (Alertmanager resolves
    it by itself if the pipeline goes quiet); a resolved one ends at ``resolved_at``. The
    ``site`` label is ``site`` (the asset registry's), else the alert's ``site`` attribute,
    else ``unknown``.

    >>> a = {"alert_id": "a1", "alert_key": "d1/overheat", "tenant_id": "t", "device_id": "d1",
    ...      "device_type": "BATTERY_PACK", "capability": "TEMPERATURE", "rule": "overheat",
    ...      "severity": "CRITICAL", "state": "FIRING", "first_seen": 0, "last_seen": 0,
    ...      "resolved_at": None, "duplicates": 2, "summary": "hot", "attributes": {"site": "s1"}}
    >>> m = to_alertmanager(a, now_ms=1000, hold_ms=60_000)
    >>> m["labels"]["site"], m["labels"]["severity"], m["labels"]["device_type"], m["endsAt"]
    ('s1', 'critical', 'battery_pack', '1970-01-01T00:01:01Z')
    >>> to_alertmanager(a, now_ms=1000, hold_ms=60_000, site="North yard")["labels"]["site"]
    'North yard'
    """
    attributes = alert.get("attributes") or {}
    labels = {
        "alertname": str(alert["rule"]),
        "severity": str(alert["severity"]).lower(),
        "component": COMPONENT,
        "device_id": str(alert["device_id"]),
        "device_type": str(alert["device_type"]).lower(),
        "capability": str(alert.get("capability", "UNKNOWN")).lower(),
        "site": str(site or attributes.get("site") or "unknown"),
        "tenant_id": str(alert.get("tenant_id", "default")),
    }
    resolved = alert["state"] == "RESOLVED"
    ends = alert.get("resolved_at") or now_ms if resolved else now_ms + hold_ms
    return {
        "labels": labels,
        "annotations": {
            "summary": str(alert.get("summary") or f"{alert['rule']} on {alert['device_id']}"),
            "alert_id": str(alert["alert_id"]),
            "alert_key": str(alert["alert_key"]),
            "duplicates": str(alert.get("duplicates", 0)),
            "last_seen": _iso(alert["last_seen"]),
        },
        "startsAt": _iso(alert["first_seen"]),
        "endsAt": _iso(ends),
    }


class AlertmanagerForwarder:
    """Posts device alerts to ``url`` (``ENVIROSTREAM_ALERTMANAGER_URL``)."""

    def __init__(
        self,
        url: str,
        metrics: PipelineMetrics,
        resend_seconds: float = 60.0,
        retries: int = 4,
        backoff_seconds: float = 0.5,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        sites: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.metrics = metrics
        self.resend_seconds = resend_seconds
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._clock, self._sleep = clock, sleep
        self._sites = sites  # (tenant, device) -> the asset registry's site, if any
        self.firing: dict[str, Mapping[str, Any]] = {}  # alert_key → latest record
        self.pending: dict[str, Mapping[str, Any]] = {}  # not yet delivered
        self._owner: dict[str, Hashable] = {}  # alert_key → input partition it came from
        self._last_post = 0.0
        # ``submit`` (the event loop) and ``flush`` (a worker thread) may run concurrently.
        self._lock = threading.Lock()

    def submit(self, alerts: Iterable[Mapping[str, Any]], owner: Hashable = None) -> None:
        """Take state changes; they are posted by the next ``flush``.

        ``owner`` (the input partition) lets ``forget`` drop what another worker now owns.
        """
        with self._lock:
            for alert in alerts:
                key = str(alert["alert_key"])
                if alert["state"] == "RESOLVED":
                    self.firing.pop(key, None)
                else:
                    self.firing[key] = alert
                self.pending[key] = alert
                self._owner[key] = owner

    def forget(self, owners: Iterable[Hashable]) -> None:
        """Drop the alerts of revoked partitions: their new owner posts them from now on
        (re-posting a stale FIRING version here could re-open an alert resolved there)."""
        gone = set(owners)
        with self._lock:
            for key in [k for k, o in self._owner.items() if o in gone]:
                self.firing.pop(key, None)
                self.pending.pop(key, None)
                del self._owner[key]

    def flush(self) -> int:
        """Post pending alerts (and all firing ones when a re-post is due); how many sent.

        Raises nothing: after ``retries`` failures the alerts stay pending, the failure is
        counted (``outcome="failed"``) and logged, and the next flush tries again.
        """
        now = self._clock()
        due = now - self._last_post >= self.resend_seconds
        with self._lock:
            sent_pending = dict(self.pending)
            batch = {**self.firing, **sent_pending} if due else sent_pending
            for key in [k for k in self._owner if k not in self.firing and k not in self.pending]:
                del self._owner[key]
        if not batch:
            return 0
        hold_ms = int(self.resend_seconds * 4 * 1000)
        body = [to_alertmanager(a, int(now * 1000), hold_ms, self._site(a)) for a in batch.values()]
        if not self._post(body):
            self.metrics.alerts_forwarded.labels("failed").inc(len(body))
            return 0
        self.metrics.alerts_forwarded.labels("sent").inc(len(body))
        with self._lock:  # keep what was submitted while posting: it is not delivered yet
            for key, alert in sent_pending.items():
                if self.pending.get(key) is alert:
                    del self.pending[key]
        self._last_post = now
        return len(body)

    def _site(self, alert: Mapping[str, Any]) -> str | None:
        if self._sites is None:
            return None
        return self._sites(str(alert.get("tenant_id", "default")), str(alert["device_id"]))

    def _post(self, body: list[dict[str, Any]]) -> bool:
        data = json.dumps(body).encode()
        delay = self.backoff_seconds
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(
                self.url, data=data, headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as resp:
                    if resp.status < 300:
                        return True
                    error = f"HTTP {resp.status}"
            except urllib.error.HTTPError as exc:
                if exc.code < 500:  # our request is wrong: retrying will not help
                    url = redact_url(self.url)
                    log.error("Alertmanager %s rejected %d alerts: %s", url, len(body), exc)
                    return False
                error = f"HTTP {exc.code}"
            except OSError as exc:
                error = str(exc)
            if attempt == self.retries:
                log.error(
                    "Alertmanager %s unreachable after %d attempts (%s); %d alerts kept for "
                    "the next flush",
                    redact_url(self.url),
                    attempt + 1,
                    error,
                    len(body),
                )
                return False
            self.metrics.alertmanager_retries.inc()
            self._sleep(delay)
            delay *= 2
        return False
