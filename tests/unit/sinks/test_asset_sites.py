"""The Alertmanager ``site`` label from the asset registry: cached, refreshed, failure-safe."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from core.metrics import PipelineMetrics
from sinks.alertmanager import AlertmanagerForwarder
from sinks.asset_sites import AssetSites


class Rows:
    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        self.result_rows = rows


class Store:
    def __init__(self) -> None:
        self.rows = [("t", "pump-1", "North")]
        self.reads = 0
        self.down = False

    def query(self, sql: str) -> Rows:
        self.reads += 1
        if self.down:
            msg = "store down"
            raise ConnectionError(msg)
        return Rows(list(self.rows))


def test_sites_are_reread_after_the_ttl_and_kept_when_the_store_fails() -> None:
    store, now = Store(), [0.0]
    sites = AssetSites(lambda: store, ttl=60, clock=lambda: now[0])
    assert sites.site("t", "pump-1") == "North"
    store.rows = [("t", "pump-1", "South")]
    now[0] = 59
    assert sites.site("t", "pump-1") == "North" and store.reads == 1
    now[0] = 61
    assert sites.site("t", "pump-1") == "South" and store.reads == 2
    store.down = True
    now[0] = 130
    assert sites.site("t", "pump-1") == "South" and store.reads == 3
    assert sites.site("t", "pump-1") == "South" and store.reads == 3  # no retry before the ttl


def test_the_forwarder_labels_alerts_with_the_registry_site(monkeypatch: Any) -> None:
    forwarder = AlertmanagerForwarder(
        "http://127.0.0.1:1",
        PipelineMetrics(CollectorRegistry()),
        sites=lambda tenant, device: {("t", "pump-1"): "North"}.get((tenant, device)),
    )
    posted: list[list[dict[str, Any]]] = []

    def post(body: list[dict[str, Any]]) -> bool:
        posted.append(body)
        return True

    monkeypatch.setattr(forwarder, "_post", post)
    alert = {"alert_id": "a", "alert_key": "k", "tenant_id": "t", "device_id": "pump-1",
             "device_type": "MACHINE", "rule": "r", "severity": "WARNING", "state": "FIRING",
             "first_seen": 0, "last_seen": 0, "attributes": {"site": "from-attribute"}}  # fmt: skip
    other = dict(alert, alert_key="k2", device_id="pump-2", attributes={})
    forwarder.submit([alert, other])
    assert forwarder.flush() == 2
    assert sorted(a["labels"]["site"] for a in posted[0]) == ["North", "unknown"]
