"""Rows of two tenants for the API tests, and a small HTTP client (urllib, no extra package).

Both tenants have a device called ``shared-1`` (same id, different data) so a leak across
tenants shows as a wrong value, not only as an extra device. Values tell where a point came
from: raw readings 0..10, minute aggregates 100.., hourly rollups 1000..; tenant B's are
negative.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from core.settings import Settings, settings_environ
from infra.harness import REPO_ROOT
from streams.readings import READING_COLUMNS

TENANT_A, TENANT_B = "tenant-a", "tenant-b"
HOUR_MS = 3_600_000
RAW_STEP_MS = 20_000
RAW_COUNT = 3000  # 16.7 h of readings every 20 s: more than 2,000 in a 24 h range


def _ts(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def alert_id(tenant: str, device: str, first_ms: int) -> str:
    return f"{tenant}/{device}/device@{first_ms}"


def seed(client: Any, settings: Settings, now_ms: int) -> dict[str, str]:
    """Readings, aggregates, rollups, anomalies and alerts of both tenants; returns alert ids."""
    label = settings.window_label
    sign = {TENANT_A: 1.0, TENANT_B: -1.0}
    devices = {TENANT_A: ["a-pump-1", "shared-1"], TENANT_B: ["b-pump-1", "shared-1"]}
    readings, aggregates, hours, anomalies, alerts = [], [], [], [], []
    start = now_ms - RAW_COUNT * RAW_STEP_MS
    ids: dict[str, str] = {}
    for tenant, names in devices.items():
        s = sign[tenant]
        for device in names:
            for i in range(RAW_COUNT):
                ts = start + i * RAW_STEP_MS
                readings.append(
                    [
                        _ts(ts),
                        tenant,
                        device,
                        "MACHINE",
                        "s1",
                        "temperature",
                        s * (i % 10),
                        "C",
                        "GOOD",
                        i,
                        f"{tenant}-{device}-{i}",
                    ]
                )
            for m in range(0, RAW_COUNT * RAW_STEP_MS, settings.window_ms):
                ws = start + m
                v = s * (100.0 + (m // settings.window_ms) % 10)
                aggregates.append(
                    [
                        _ts(ws),
                        _ts(ws + settings.window_ms),
                        label,
                        tenant,
                        device,
                        "MACHINE",
                        "temperature",
                        "C",
                        5,
                        v,
                        v - 1,
                        v + 1,
                        0.5,
                        v,
                        v,
                        _ts(ws),
                        _ts(ws + settings.window_ms - 1),
                    ]
                )
            for h in range(17):
                hs = (start // HOUR_MS + h) * HOUR_MS
                v = s * (1000.0 + h)
                hours.append(
                    [
                        _ts(hs),
                        _ts(hs + HOUR_MS),
                        "1h",
                        label,
                        tenant,
                        device,
                        "MACHINE",
                        "temperature",
                        "C",
                        360,
                        1800,
                        v * 1800,
                        v * v * 1800,
                        v,
                        0.0,
                        v - 1,
                        v + 1,
                        v,
                        v,
                        _ts(hs),
                        _ts(hs + HOUR_MS - 1),
                    ]
                )
            anomalies.append(
                [
                    _ts(now_ms - 600_000),
                    tenant,
                    device,
                    "MACHINE",
                    "temperature",
                    "hst",
                    s * 0.9,
                    0.5,
                    s * 42.0,
                    True,
                    f"an-{tenant}-{device}",
                ]
            )
            first = now_ms - 3_600_000
            aid = alert_id(tenant, device, first)
            ids[f"{tenant}:{device}"] = aid
            for version, state in ((1, "FIRING"), (2, "FIRING")):
                alerts.append(
                    [
                        aid,
                        aid.split("@")[0],
                        tenant,
                        device,
                        "MACHINE",
                        "temperature",
                        "zscore",
                        "CRITICAL" if tenant == TENANT_A else "WARNING",
                        state,
                        _ts(first),
                        _ts(first + version * 60_000),
                        None,
                        version - 1,
                        f"{device} too hot",
                        version,
                        {"tenant": tenant},
                    ]
                )
    client.insert(
        "readings",
        readings,
        column_names=list(READING_COLUMNS[: READING_COLUMNS.index("reading_id") + 1]),
    )
    client.insert(
        "aggregates",
        aggregates,
        column_names=[
            "window_start",
            "window_end",
            "window_size",
            "tenant_id",
            "device_id",
            "device_type",
            "capability",
            "unit",
            "count",
            "mean",
            "min",
            "max",
            "std",
            "first",
            "last",
            "first_ts",
            "last_ts",
        ],
    )
    client.insert(
        "aggregates_1h",
        hours,
        column_names=[
            "window_start",
            "window_end",
            "window_size",
            "source_window_size",
            "tenant_id",
            "device_id",
            "device_type",
            "capability",
            "unit",
            "windows",
            "count",
            "sum",
            "sum_sq",
            "mean",
            "std",
            "min",
            "max",
            "first",
            "last",
            "first_ts",
            "last_ts",
        ],
    )
    client.insert(
        "anomalies",
        anomalies,
        column_names=[
            "ts",
            "tenant_id",
            "device_id",
            "device_type",
            "capability",
            "detector",
            "score",
            "threshold",
            "value",
            "is_anomaly",
            "reading_id",
        ],
    )
    client.insert(
        "alerts",
        alerts,
        column_names=[
            "alert_id",
            "alert_key",
            "tenant_id",
            "device_id",
            "device_type",
            "capability",
            "rule",
            "severity",
            "state",
            "first_seen",
            "last_seen",
            "resolved_at",
            "duplicates",
            "summary",
            "version",
            "attributes",
        ],
    )
    return ids


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def call(
    base: str,
    method: str,
    path: str,
    key: str | None = None,
    body: Any = None,
    header: str = "bearer",
) -> Answer:
    """One HTTP request; the answer's JSON body (or text), whatever the status."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        if header == "bearer":
            headers["Authorization"] = f"Bearer {key}"
        else:
            headers["X-API-Key"] = key
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        status, raw, hdrs = exc.code, exc.read(), dict(exc.headers)
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Answer(status, parsed, {k.lower(): v for k, v in hdrs.items()})


def envirostream(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m envirostream ARGS`` with exactly ``settings``; must exit 0."""
    out = subprocess.run(
        [sys.executable, "-m", "envirostream", *args],
        env=settings_environ(settings),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, f"envirostream {' '.join(args)} exited {out.returncode}:\n{out}"
    return out


def create_key(settings: Settings, tenant: str, scope: str, name: str) -> tuple[str, str]:
    """``(key_id, key)`` from ``envirostream keys create`` (the key is its last line)."""
    out = envirostream(
        settings, "keys", "create", "--tenant", tenant, "--scope", scope, "--name", name
    ).stdout.splitlines()
    key_id = out[0].split()[1]
    return key_id, out[-1].strip()
