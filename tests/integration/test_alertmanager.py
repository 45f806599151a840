"""The device-alert sink against a real Alertmanager running the project's own routing.

Alertmanager (Debian's binary) runs infra/alertmanager/alertmanager.yml with its webhook
URLs pointed at a receiver in this test and its timings shortened. Alert records are built
here (the alert lifecycle is another stage); the test checks that Alertmanager received
them, grouped them by site and device kind, inhibited them while the pipeline was down and
resolved them, and that an unreachable Alertmanager is retried, counted and not forgotten.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from core.metrics import PipelineMetrics
from infra.processes import free_port
from infra.prometheus_local import LocalService, get_json
from sinks.alertmanager import AlertmanagerForwarder
from tests.integration.conftest import Webhook

REPO = Path(__file__).resolve().parents[2]
NOW_MS = int(time.time() * 1000)


def alert(n: int, site: str, device_type: str, state: str = "FIRING") -> dict[str, Any]:
    return {
        "alert_id": f"a{n}-{state}",
        "alert_key": f"dev-{n}/overheat",
        "tenant_id": "default",
        "device_id": f"dev-{n}",
        "device_type": device_type,
        "capability": "TEMPERATURE",
        "rule": "overheat",
        "severity": "WARNING",
        "state": state,
        "first_seen": NOW_MS - 60_000,
        "last_seen": NOW_MS,
        "resolved_at": NOW_MS if state == "RESOLVED" else None,
        "duplicates": 3,
        "summary": f"dev-{n} above 60 degC",
        "attributes": {"site": site},
    }


FLEET = [(1, "north", "BATTERY_PACK"), (2, "north", "BATTERY_PACK"), (3, "north", "MACHINE"),
         (4, "south", "BATTERY_PACK")]  # fmt: skip


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def post(am: LocalService, alerts: list[dict[str, Any]]) -> None:
    """What Prometheus does with its own alerts."""
    request = urllib.request.Request(
        am.url + "/api/v2/alerts",
        data=json.dumps(alerts).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.status == 200


def device_alerts(am: LocalService) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = get_json(am.url, "/api/v2/alerts", filter='component="device"')
    return alerts


def test_received_grouped_inhibited_and_resolved(
    alertmanager: tuple[LocalService, Webhook],
) -> None:
    am, webhook = alertmanager
    metrics = PipelineMetrics(CollectorRegistry())
    forwarder = AlertmanagerForwarder(am.url, metrics, resend_seconds=30)
    forwarder.submit(alert(n, site, kind) for n, site, kind in FLEET)
    assert forwarder.flush() == 4

    wait_for(lambda: len(device_alerts(am)) == 4, 10, "4 device alerts in Alertmanager")
    groups = get_json(am.url, "/api/v2/alerts/groups")
    by_group = {
        (g["labels"].get("site"), g["labels"].get("device_type")): len(g["alerts"])
        for g in groups
        if g["receiver"]["name"] == "fleet-webhook"
    }
    assert by_group == {("north", "battery_pack"): 2, ("north", "machine"): 1,
                        ("south", "battery_pack"): 1}  # fmt: skip
    wait_for(lambda: len(webhook.received) >= 3, 15, "three grouped webhook notifications")
    notified = sorted(
        (n["groupLabels"]["site"], n["groupLabels"]["device_type"], len(n["alerts"]), n["status"])
        for n in webhook.received
    )
    assert notified == [("north", "battery_pack", 2, "firing"), ("north", "machine", 1, "firing"),
                        ("south", "battery_pack", 1, "firing")]  # fmt: skip

    # The pipeline is down (as Prometheus would post it): device alerts are inhibited.
    down = {"labels": {"alertname": "EnviroStreamWorkerDown", "severity": "critical",
                       "component": "pipeline", "job": "envirostream-worker"}}  # fmt: skip
    post(am, [down])
    wait_for(
        lambda: [a["status"]["state"] for a in device_alerts(am)] == ["suppressed"] * 4,
        10,
        "device alerts inhibited while the pipeline is down",
    )
    ended = down | {"endsAt": "2000-01-01T00:00:00Z", "startsAt": "1999-12-31T00:00:00Z"}
    post(am, [ended])
    wait_for(
        lambda: [a["status"]["state"] for a in device_alerts(am)] == ["active"] * 4,
        10,
        "device alerts active again once the pipeline is back",
    )

    before = len(webhook.received)
    forwarder.submit(alert(n, site, kind, "RESOLVED") for n, site, kind in FLEET)
    assert forwarder.flush() == 4
    assert forwarder.firing == {}
    wait_for(lambda: device_alerts(am) == [], 10, "resolved alerts to leave the active list")
    wait_for(
        lambda: sum(n["status"] == "resolved" for n in webhook.received[before:]) >= 3,
        15,
        "resolved notifications for the three groups",
    )
    assert (
        metrics.registry.get_sample_value(
            "envirostream_alertmanager_alerts_forwarded_total", {"outcome": "sent"}
        )
        == 8
    )


def test_unreachable_alertmanager_is_retried_counted_and_kept() -> None:
    metrics = PipelineMetrics(CollectorRegistry())
    sleeps: list[float] = []
    forwarder = AlertmanagerForwarder(
        f"http://127.0.0.1:{free_port()}", metrics, retries=3, backoff_seconds=0.1,
        sleep=sleeps.append,
    )  # fmt: skip
    forwarder.submit([alert(9, "east", "VEHICLE")])
    assert forwarder.flush() == 0
    assert sleeps == [0.1, 0.2, 0.4]
    value = metrics.registry.get_sample_value
    assert value("envirostream_alertmanager_retries_total") == 3
    assert value("envirostream_alertmanager_alerts_forwarded_total", {"outcome": "failed"}) == 1
    assert list(forwarder.pending) == ["dev-9/overheat"]
