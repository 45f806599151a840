"""The operator API against the real store and broker, through a real uvicorn process.

Tenant isolation (a key of tenant A never sees a device, reading, aggregate, anomaly or
alert of tenant B), scopes, 401/403/429 bodies, feedback on Kafka, series resolutions and
``envirostream keys`` (subprocesses), alert history surviving merges.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from confluent_kafka import Consumer, TopicPartition

from api.app import create_app
from api.keys import find_key
from api.local_key import ensure_local_key
from api.server import ApiProcess
from core.settings import Settings
from infra.processes import free_port
from schemas import AvroCodec
from sinks.asset_sites import AssetSites
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from tests.integration.api_fixtures import (
    RAW_COUNT,
    RAW_STEP_MS,
    TENANT_A,
    TENANT_B,
    call,
    create_key,
    envirostream,
    seed,
)
from topics import ALERTS_FEEDBACK, TopicAdmin, topic_specs

pytestmark = pytest.mark.integration


@dataclass
class Api:
    settings: Settings
    url: str
    client: Any
    alerts: dict[str, str]
    keys: dict[str, str]  # "tenant:scope" -> key
    key_ids: dict[str, str]
    now_ms: int


@pytest.fixture(scope="module")
def api(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    settings = services.model_copy(
        update={
            "api_port": free_port(),
            "api_rate_per_second": 1000.0,
            "api_rate_burst": 1000,
            "api_key_cache_seconds": 0.5,
            "window_seconds": 60.0,  # minute windows, as in production (auto resolution)
        }
    )
    TopicAdmin(settings.bootstrap_servers).create_missing(topic_specs(settings))
    client = get_client(settings)
    ClickHouseSink(client, settings).setup()
    now_ms = int(time.time() * 1000)
    alerts = seed(client, settings, now_ms)
    keys, key_ids = {}, {}
    for tenant in (TENANT_A, TENANT_B):
        for scope in ("read", "operate", "admin"):
            key_id, key = create_key(settings, tenant, scope, f"test {scope}")
            keys[f"{tenant}:{scope}"], key_ids[f"{tenant}:{scope}"] = key, key_id
    log = tmp_path_factory.mktemp("api") / "api.log"
    process = ApiProcess(settings, log)
    try:
        process.wait_ready(60)
        yield Api(settings, process.url, client, alerts, keys, key_ids, now_ms)
    finally:
        process.stop()
        client.close()


def get(api: Api, path: str, who: str = f"{TENANT_A}:read") -> Any:
    answer = call(api.url, "GET", path, api.keys[who])
    assert answer.status == 200, f"GET {path} as {who}: {answer.status} {answer.body}"
    return answer.body


def test_health_needs_no_key_and_reports_the_store(api: Api) -> None:
    answer = call(api.url, "GET", "/api/v1/health")
    assert (answer.status, answer.body) == (200, {"status": "ok", "store": True})
    assert call(api.url, "GET", "/docs").status == 200
    assert "/api/v1/alerts" in call(api.url, "GET", "/openapi.json").body["paths"]


@pytest.mark.parametrize(
    ("key", "expected"),
    [(None, "missing API key"), ("es_not-a-key", "unknown API key"), ("", "missing API key")],
)
def test_bad_or_missing_keys_get_401_with_a_reason(
    api: Api, key: str | None, expected: str
) -> None:
    answer = call(api.url, "GET", "/api/v1/devices", key)
    assert answer.status == 401
    assert expected in answer.body["detail"]
    assert answer.headers["www-authenticate"] == "Bearer"


def test_x_api_key_header_is_accepted(api: Api) -> None:
    answer = call(api.url, "GET", "/api/v1/devices", api.keys[f"{TENANT_A}:read"], header="x")
    assert answer.status == 200


def test_a_tenant_sees_only_its_devices(api: Api) -> None:
    a = get(api, "/api/v1/devices")["devices"]
    b = get(api, "/api/v1/devices", f"{TENANT_B}:read")["devices"]
    assert [d["device_id"] for d in a] == ["a-pump-1", "shared-1"]
    assert [d["device_id"] for d in b] == ["b-pump-1", "shared-1"]
    assert all(d["open_alerts"] == 1 and d["site"] == "unknown" for d in a)
    assert (
        call(api.url, "GET", "/api/v1/devices/b-pump-1", api.keys[f"{TENANT_A}:read"]).status == 404
    )
    assert get(api, "/api/v1/devices?q=pump")["devices"][0]["device_id"] == "a-pump-1"
    detail = get(api, "/api/v1/devices/shared-1")
    assert detail["capabilities"] == ["temperature"]
    assert detail["last_seen_ms"] == api.now_ms - RAW_STEP_MS


@pytest.mark.parametrize("resolution", ["raw", "minute", "hour"])
def test_series_of_a_shared_device_id_never_mixes_tenants(api: Api, resolution: str) -> None:
    start = api.now_ms - 24 * 3_600_000
    path = (
        f"/api/v1/devices/shared-1/series?resolution={resolution}"
        f"&start_ms={start}&end_ms={api.now_ms + 1}"
    )
    a = get(api, path)["points"]
    b = get(api, path, f"{TENANT_B}:read")["points"]
    assert a and b
    assert all(p["value"] >= 0 for p in a) and all(p["value"] <= 0 for p in b)
    assert get(api, path.replace("shared-1", "b-pump-1"))["points"] == []


def test_series_resolution_reads_the_right_table(api: Api) -> None:
    start, end = api.now_ms - 24 * 3_600_000, api.now_ms + 1
    base = f"/api/v1/devices/a-pump-1/series?start_ms={start}&end_ms={end}&capability=temperature"
    raw = get(api, base + "&resolution=raw")
    assert len(raw["points"]) == RAW_COUNT
    assert {p["value"] for p in raw["points"]} == {float(v) for v in range(10)}
    assert all(p["count"] == 1 and p["min"] == p["max"] == p["value"] for p in raw["points"])
    minute = get(api, base + "&resolution=minute")["points"]
    assert len(minute) == RAW_COUNT * RAW_STEP_MS // api.settings.window_ms
    assert all(100 <= p["value"] < 110 and p["count"] == 5 for p in minute)
    hour = get(api, base + "&resolution=hour")["points"]
    assert 16 <= len(hour) <= 17 and all(1000 <= p["value"] < 1017 for p in hour)
    # auto: 3,000 raw readings in 24 h are more than 2,000 -> the minute windows
    assert get(api, base)["resolution"] == "minute"
    week = base.replace(f"start_ms={start}", f"start_ms={end - 7 * 24 * 3_600_000}")
    assert get(api, week)["resolution"] == "hour"
    short = f"/api/v1/devices/a-pump-1/series?start_ms={api.now_ms - 3_600_000}&end_ms={end}"
    assert get(api, short)["resolution"] == "raw"
    bad = call(
        api.url,
        "GET",
        base.replace(f"start_ms={start}", f"start_ms={end + 5}"),
        api.keys[f"{TENANT_A}:read"],
    )
    assert bad.status == 422 and "must be before end_ms" in bad.body["detail"]


def test_anomalies_are_the_tenants_own(api: Api) -> None:
    a = get(api, "/api/v1/devices/shared-1/anomalies")["anomalies"]
    assert [(x["detector"], x["value"]) for x in a] == [("hst", 42.0)]
    assert get(api, "/api/v1/devices/b-pump-1/anomalies")["anomalies"] == []


def test_alerts_list_filters_and_stays_in_the_tenant(api: Api) -> None:
    alerts = get(api, "/api/v1/alerts")["alerts"]
    assert sorted(a["alert_id"] for a in alerts) == sorted(
        api.alerts[f"{TENANT_A}:{d}"] for d in ("a-pump-1", "shared-1")
    )
    assert all(a["version"] == 2 and a["site"] == "unknown" for a in alerts)
    assert get(api, "/api/v1/alerts?severity=WARNING")["alerts"] == []
    assert len(get(api, "/api/v1/alerts?severity=WARNING", f"{TENANT_B}:read")["alerts"]) == 2
    assert [a["device_id"] for a in get(api, "/api/v1/alerts?device_id=shared-1")["alerts"]] == [
        "shared-1"
    ]
    assert get(api, f"/api/v1/alerts?end_ms={api.now_ms - 7_200_000}")["alerts"] == []
    assert (
        call(api.url, "GET", "/api/v1/alerts?state=NOPE", api.keys[f"{TENANT_A}:read"]).status
        == 422
    )
    fleet = get(api, "/api/v1/fleet")
    assert fleet["devices_by_state"] == {"ok": 0, "alerting": 2, "silent": 0}
    assert fleet["alerts_by_severity"] == {"CRITICAL": 2}


def test_alert_history_survives_merges_and_other_tenants_get_404(api: Api) -> None:
    aid = api.alerts[f"{TENANT_A}:a-pump-1"]
    api.client.command("OPTIMIZE TABLE alerts FINAL")
    assert (
        api.client.command(
            "SELECT count() FROM alerts WHERE alert_id = {a:String}", parameters={"a": aid}
        )
        == 1
    )
    versions = get(api, f"/api/v1/alerts/history?alert_id={aid}")["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    other = call(
        api.url, "GET", f"/api/v1/alerts/history?alert_id={aid}", api.keys[f"{TENANT_B}:read"]
    )
    assert other.status == 404


def _feedback_records(settings: Settings) -> list[dict[str, Any]]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"t-{time.time_ns()}",
            "enable.auto.commit": False,
        }
    )
    try:
        parts = [TopicPartition(ALERTS_FEEDBACK, p, 0) for p in range(settings.topic_partitions)]
        ends = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
        consumer.assign(parts)
        codec, records = AvroCodec(), list[dict[str, Any]]()
        deadline = time.monotonic() + 20
        while len(records) < ends and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            value = msg.value() if msg is not None and msg.error() is None else None
            if value is not None:
                records.append(codec.decode(value, "AlertFeedback"))
        return records
    finally:
        consumer.close()


def test_feedback_needs_operate_stays_in_the_tenant_and_reaches_kafka(api: Api) -> None:
    aid = api.alerts[f"{TENANT_A}:shared-1"]
    body = {"alert_id": aid, "action": "ack", "operator": "ana", "comment": "on my way"}
    read = call(api.url, "POST", "/api/v1/alerts/feedback", api.keys[f"{TENANT_A}:read"], body)
    assert read.status == 403 and "scope 'operate'" in read.body["detail"]
    foreign = call(
        api.url, "POST", "/api/v1/alerts/feedback", api.keys[f"{TENANT_B}:operate"], body
    )
    assert foreign.status == 404
    # tenant B's own alert on a device of the same name is not tenant A's either
    b_alert = dict(body, alert_id=api.alerts[f"{TENANT_B}:shared-1"])
    crossed = call(
        api.url, "POST", "/api/v1/alerts/feedback", api.keys[f"{TENANT_A}:operate"], b_alert
    )
    assert crossed.status == 404
    assert _feedback_records(api.settings) == []
    ok = call(api.url, "POST", "/api/v1/alerts/feedback", api.keys[f"{TENANT_A}:operate"], body)
    assert (ok.status, ok.body) == (202, {"accepted": True})
    records = _feedback_records(api.settings)
    assert [
        (r["alert_id"], r["tenant_id"], r["device_id"], r["action"], r["operator"], r["comment"])
        for r in records
    ] == [(aid, TENANT_A, "shared-1", "ACK", "ana", "on my way")]


def test_asset_registry_needs_admin_and_is_joined_into_alerts(api: Api, tmp_path: Path) -> None:
    asset = {"site": "North yard", "model": "P-200", "tags": ["pump"], "install_date": "2024-03-01"}
    path = "/api/v1/devices/a-pump-1/asset"
    assert call(api.url, "PUT", path, api.keys[f"{TENANT_A}:operate"], asset).status == 403
    put = call(api.url, "PUT", path, api.keys[f"{TENANT_A}:admin"], asset)
    assert put.status == 200 and put.body["site"] == "North yard"
    assert put.body["install_date"] == "2024-03-01"
    alerts = get(api, "/api/v1/alerts?device_id=a-pump-1")["alerts"]
    assert [a["site"] for a in alerts] == ["North yard"]
    # the file loader: tenant B's device of the same name gets its own site
    csv = tmp_path / "assets.csv"
    csv.write_text("device_id,site,location,tags\nshared-1,South,hall 2,x;y\n")
    envirostream(api.settings, "assets", "load", str(csv), "--tenant", TENANT_B)
    b = get(api, "/api/v1/devices/shared-1", f"{TENANT_B}:read")
    assert (b["site"], b["location"], b["tags"]) == ("South", "hall 2", ["x", "y"])
    assert get(api, "/api/v1/devices/shared-1")["site"] == "unknown"
    # the worker's Alertmanager forwarder labels alerts with the same registry
    sites = AssetSites.from_settings(api.settings)
    assert sites.site(TENANT_B, "shared-1") == "South"
    assert sites.site(TENANT_A, "a-pump-1") == "North yard"
    assert sites.site(TENANT_A, "shared-1") is None


def test_keys_are_stored_hashed_listed_without_secrets_and_revoked(api: Api) -> None:
    key_id, key = create_key(api.settings, TENANT_A, "read", "to revoke")
    assert key.startswith("es_") and len(key) > 40
    stored = api.client.query(
        "SELECT key_hash, tenant_id, scope FROM api_keys FINAL WHERE key_id = {k:String}",
        parameters={"k": key_id},
    ).result_rows
    assert stored == [(hashlib.sha256(key.encode()).hexdigest(), TENANT_A, "read")]
    dump = api.client.raw_query("SELECT * FROM api_keys FORMAT TSV").decode()
    assert key not in dump
    listing = envirostream(api.settings, "keys", "list").stdout
    assert key_id in listing and "to revoke" in listing and key not in listing
    assert call(api.url, "GET", "/api/v1/devices", key).status == 200
    envirostream(api.settings, "keys", "revoke", key_id)
    deadline = time.monotonic() + 5
    answer = call(api.url, "GET", "/api/v1/devices", key)
    while answer.status == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = call(api.url, "GET", "/api/v1/devices", key)
    assert answer.status == 401 and "revoked" in answer.body["detail"]
    assert f"{key_id}" in [
        line.split()[0] for line in envirostream(api.settings, "keys", "list").stdout.splitlines()
    ]


def test_rate_limit_answers_429_with_retry_after(api: Api) -> None:
    settings = api.settings.model_copy(
        update={"api_port": free_port(), "api_rate_per_second": 1.0, "api_rate_burst": 3}
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=settings.api_port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{settings.api_port}"
        key = api.keys[f"{TENANT_A}:read"]
        statuses = [call(url, "GET", "/api/v1/fleet", key).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = call(url, "GET", "/api/v1/fleet", key)
        assert limited.status == 429 and "rate limit" in limited.body["detail"]
        assert int(limited.headers["retry-after"]) >= 1
        # another key has its own bucket
        assert call(url, "GET", "/api/v1/fleet", api.keys[f"{TENANT_A}:admin"]).status == 200
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_local_operator_key_of_up_is_kept_reused_and_replaced(api: Api, tmp_path: Path) -> None:
    settings = api.settings.model_copy(update={"data_dir": tmp_path})
    path = ensure_local_key(api.client, settings, TENANT_A)
    assert path == tmp_path / "operator.key" and path.stat().st_mode & 0o777 == 0o600
    key = path.read_text().strip()
    assert call(api.url, "GET", "/api/v1/devices", key).status == 200
    assert ensure_local_key(api.client, settings, TENANT_A).read_text().strip() == key  # reused
    # Another tenant's `up` gets its own key, not the first tenant's.
    other = ensure_local_key(api.client, settings, TENANT_B).read_text().strip()
    assert other != key
    record = find_key(api.client, other)
    assert record is not None and record.tenant_id == TENANT_B and record.scope == "operate"
    # A revoked key is replaced by a working one.
    envirostream(api.settings, "keys", "revoke", record.key_id)
    fresh = ensure_local_key(api.client, settings, TENANT_B).read_text().strip()
    assert fresh not in (key, other)
    assert call(api.url, "GET", "/api/v1/devices", fresh).status == 200
