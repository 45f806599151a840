"""Alert records read back from ``telemetry.alerts``: the firing gauge and Alertmanager.

:class:`AlertForwarding` keeps the FIRING alerts of the partitions this worker owns (for
``envirostream_alerts_firing{severity}``) and, when an Alertmanager is configured, hands
them to the forwarder, which posts from a thread: never on the event loop, never under the
worker's lock, so an unreachable Alertmanager holds up neither rows nor commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.metrics import SEVERITIES, PipelineMetrics
from core.records import Source
from sinks.alertmanager import AlertmanagerForwarder
from streams.records import InputRecord

__all__ = ["AlertForwarding"]

log = logging.getLogger(__name__)


class AlertForwarding:
    """Firing alerts per partition, and their posts to Alertmanager (optional)."""

    def __init__(
        self, metrics: PipelineMetrics, forwarder: AlertmanagerForwarder | None = None
    ) -> None:
        self.metrics = metrics
        self.forwarder = forwarder
        self.forwarding: asyncio.Future[int] | None = None  # the post under way, if any
        self.firing: dict[str, tuple[Source, str]] = {}  # alert_key → (partition, severity)

    def observe(
        self, batch: Sequence[InputRecord], records: Sequence[Mapping[str, Any] | None]
    ) -> None:
        """Alert state changes (``None``: a record that did not decode): the gauge, and
        Alertmanager (posted off the loop)."""
        by_source: dict[Source, list[Mapping[str, Any]]] = {}
        for rec, alert in zip(batch, records, strict=True):
            if alert is None:
                continue
            by_source.setdefault(rec.source, []).append(alert)
            key = str(alert["alert_key"])
            if alert["state"] == "FIRING":
                self.firing[key] = (rec.source, str(alert["severity"]).lower())
            else:
                self.firing.pop(key, None)
        self._set_firing_gauge()
        if self.forwarder is not None:
            for src, alerts in by_source.items():
                self.forwarder.submit(alerts, owner=src)
            self.forward()

    def forward(self) -> None:
        """Start a post to Alertmanager in a thread unless one is under way.

        The forwarder retries with backoff and keeps what it could not deliver, so nothing
        here waits for Alertmanager; the next call (every housekeeping tick) tries again.
        """
        if self.forwarder is None:
            return
        if self.forwarding is not None and not self.forwarding.done():
            return
        self.forwarding = asyncio.ensure_future(asyncio.to_thread(self.forwarder.flush))
        self.forwarding.add_done_callback(_log_failure)

    def forget(self, sources: Iterable[Source]) -> None:
        """Partitions revoked: their alerts are the new owner's to count and post."""
        gone = set(sources)
        self.firing = {k: v for k, v in self.firing.items() if v[0] not in gone}
        self._set_firing_gauge()
        if self.forwarder is not None:
            self.forwarder.forget(list(gone))

    def _set_firing_gauge(self) -> None:
        counts = Counter(severity for _, severity in self.firing.values())
        for severity in SEVERITIES:
            self.metrics.alerts_firing.labels(severity).set(counts.get(severity, 0))


def _log_failure(task: asyncio.Future[int]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("forwarding alerts to Alertmanager failed", exc_info=task.exception())
