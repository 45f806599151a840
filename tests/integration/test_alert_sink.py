"""Anomaly scores and alerts through the real worker into ClickHouse and Alertmanager.

Real Kafka and the chdb store (``services``), a real Alertmanager running the project's
routing (timings shortened), and ``envirostream worker`` in a child process with
``ENVIROSTREAM_ALERTMANAGER_URL`` set. The records are built here (detection is another
stage): FIRING versions of three alerts and a batch of anomaly scores, then RESOLVED
versions of the same alert keys. The alerts table read with FINAL must hold each alert's
latest version, the anomalies table every score, and Alertmanager must show the alerts
received and then resolved.
"""

from __future__ import annotations

import time
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.secrets import SecretUrl
from core.settings import Settings
from infra.prometheus_local import LocalService, get_json
from schemas import AvroCodec
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.conftest import Webhook, WorkerProcess, wait_for_worker
from topics import ALERTS, ANOMALIES, TopicAdmin, topic_specs
from topics.producer import RecordProducer

NOW_MS = int(time.time() * 1000)
# (device, rule, severity, site, device type)
ALERTS_SPEC = [
    ("sink-dev-1", "overheat", "CRITICAL", "north", "BATTERY_PACK"),
    ("sink-dev-2", "overheat", "WARNING", "north", "BATTERY_PACK"),
    ("sink-dev-3", "bearing_wear", "WARNING", "south", "MACHINE"),
]
DUPLICATES = 4


def alert(n: int, state: str, version: int) -> dict[str, Any]:
    device, rule, severity, site, kind = ALERTS_SPEC[n]
    return {
        "alert_id": f"{device}/{rule}@{NOW_MS - 60_000}",
        "alert_key": f"{device}/{rule}",
        "tenant_id": "default",
        "device_id": device,
        "device_type": kind,
        "capability": "TEMPERATURE",
        "rule": rule,
        "severity": severity,
        "state": state,
        "first_seen": NOW_MS - 60_000,
        "last_seen": NOW_MS - 60_000 + version * 1000,
        "resolved_at": NOW_MS if state == "RESOLVED" else None,
        "duplicates": 0 if version == 1 else DUPLICATES,
        "summary": f"{rule} on {device}",
        "version": version,
        "attributes": {"site": site},
    }


def scores() -> list[dict[str, Any]]:
    return [
        {
            "ts": NOW_MS - 30_000 + i * 100,
            "tenant_id": "default",
            "device_id": f"sink-dev-{i % 3 + 1}",
            "device_type": "MACHINE",
            "capability": "VIBRATION",
            "detector": "zscore" if i % 2 else "hst",
            "score": float(i),
            "threshold": 5.0,
            "value": 10.0 + i,
            "is_anomaly": i > 5,
            "reading_id": f"r-{i}",
        }
        for i in range(25)
    ]


def produce(settings: Settings, topic: str, keys: list[bytes], values: list[bytes]) -> None:
    producer = RecordProducer(settings.bootstrap_servers)
    producer.send_batch(topic, keys, values)
    assert producer.flush(30) == 0


def device_alerts(am: LocalService) -> dict[str, dict[str, Any]]:
    alerts = get_json(am.url, "/api/v2/alerts", filter='component="device"')
    return {a["annotations"]["alert_key"]: a for a in alerts}


def metric(settings: Settings, name: str, **labels: str) -> float | None:
    url = f"http://127.0.0.1:{settings.metrics_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    found = [
        float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]
    return sum(found) if found else None  # summed over the labels not given


def test_anomalies_and_alerts_are_stored_and_forwarded(
    services: Settings,
    alertmanager: tuple[LocalService, Webhook],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    am, webhook = alertmanager
    settings = services.model_copy(update={"alertmanager_url": SecretUrl(am.url)})
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    codec = AvroCodec()
    client = get_client(settings)
    ClickHouseSink(client, settings).setup()  # idempotent; the worker does it too
    n = len(ALERTS_SPEC)

    # Phase 1: two FIRING versions of each alert (the second with duplicates folded in),
    # one record that is not an Alert, and the anomaly scores.
    firing = [alert(i, "FIRING", 1) for i in range(n)] + [alert(i, "FIRING", 2) for i in range(n)]
    produce(
        settings,
        ALERTS,
        [a["alert_key"].encode() for a in firing] + [b"garbage"],
        [*codec.encode_batch("Alert", firing), b"\x00not an alert"],
    )
    expected_scores = scores()
    produce(
        settings,
        ANOMALIES,
        [s["device_id"].encode() for s in expected_scores],
        codec.encode_batch("AnomalyScore", expected_scores),
    )

    worker = WorkerProcess(settings, tmp_path_factory.mktemp("logs") / "worker.log")
    try:
        wait_for_worker(
            lambda: (
                client.command("SELECT count() FROM anomalies FINAL") == len(expected_scores)
                and client.command("SELECT countIf(version = 2) FROM alerts FINAL") == n
            ),
            45,
            "anomalies and firing alerts in ClickHouse",
            worker,
        )
        wait_for_worker(lambda: len(device_alerts(am)) == n, 15, "alerts in Alertmanager", worker)
        received = device_alerts(am)
        assert {k: (a["labels"]["severity"], a["labels"]["site"], a["status"]["state"])
                for k, a in received.items()} == {
            "sink-dev-1/overheat": ("critical", "north", "active"),
            "sink-dev-2/overheat": ("warning", "north", "active"),
            "sink-dev-3/bearing_wear": ("warning", "south", "active"),
        }  # fmt: skip
        assert {a["annotations"]["duplicates"] for a in received.values()} == {str(DUPLICATES)}
        wait_for_worker(
            lambda: (
                metric(settings, "envirostream_alerts_firing", severity="warning") == 2
                and metric(settings, "envirostream_alerts_firing", severity="critical") == 1
            ),
            10,
            "alerts firing by severity",
            worker,
        )
        assert metric(settings, "envirostream_records_dead_lettered_total") == 1

        # Phase 2: the same alert keys, RESOLVED.
        resolved = [alert(i, "RESOLVED", 3) for i in range(n)]
        produce(
            settings,
            ALERTS,
            [a["alert_key"].encode() for a in resolved],
            codec.encode_batch("Alert", resolved),
        )
        wait_for_worker(
            lambda: client.command("SELECT countIf(state = 'RESOLVED') FROM alerts FINAL") == n,
            30,
            "resolved alerts in ClickHouse",
            worker,
        )
        wait_for_worker(
            lambda: device_alerts(am) == {}, 15, "alerts resolved in Alertmanager", worker
        )
        wait_for_worker(
            lambda: (
                {
                    a["labels"]["device_id"]
                    for note in webhook.received
                    if note["status"] == "resolved"
                    for a in note["alerts"]
                }
                == {spec[0] for spec in ALERTS_SPEC}
            ),
            15,
            "resolved notifications from Alertmanager",
            worker,
        )
        wait_for_worker(
            lambda: (
                metric(settings, "envirostream_alerts_firing", severity="warning") == 0
                and metric(settings, "envirostream_alerts_firing", severity="critical") == 0
            ),
            10,
            "no alerts firing",
            worker,
        )
        sent = metric(settings, "envirostream_alertmanager_alerts_forwarded_total", outcome="sent")
        assert sent is not None and sent >= 2 * n
    finally:
        worker.stop()

    rows = client.query(
        "SELECT alert_key, alert_id, state, severity, version, duplicates, "
        "toUnixTimestamp64Milli(first_seen), toUnixTimestamp64Milli(last_seen), "
        "toUnixTimestamp64Milli(resolved_at), summary, attributes['site'] "
        "FROM alerts FINAL ORDER BY alert_key"
    ).result_rows
    assert [tuple(r) for r in rows] == [
        (
            a["alert_key"], a["alert_id"], "RESOLVED", a["severity"], 3, DUPLICATES,
            a["first_seen"], a["last_seen"], NOW_MS, a["summary"], a["attributes"]["site"],
        )
        for a in sorted(resolved, key=lambda a: a["alert_key"])
    ]  # fmt: skip

    stored = client.query(
        "SELECT device_id, detector, toUnixTimestamp64Milli(ts), score, threshold, value, "
        "is_anomaly, reading_id FROM anomalies FINAL ORDER BY reading_id"
    ).result_rows
    assert sorted(tuple(r) for r in stored) == sorted(
        (s["device_id"], s["detector"], s["ts"], s["score"], s["threshold"], s["value"],
         s["is_anomaly"], s["reading_id"])
        for s in expected_scores
    )  # fmt: skip
