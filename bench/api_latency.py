"""``envirostream bench api``: latency of the operator API on a store of 10 million readings.

A private embedded store (own data dir and port) is filled server-side (``INSERT ... SELECT
FROM numbers(N)``): ``readings`` of 1,000 devices x 2 capabilities over the last 48 hours
(90% of the devices in the benchmarked tenant, 10% in another), their minute ``aggregates``
and hourly rollups, and ``alerts`` (every version reaching ``alert_versions`` through its
view). Then ``envirostream api`` runs as a child process (the real uvicorn server) and the
bench times, over HTTP on loopback, N requests each of:

* ``alerts``: ``GET /api/v1/alerts?limit=100`` (the newest alerts of the tenant, with site);
* ``history``: ``GET /api/v1/devices/{id}/series`` over the last 24 hours (auto resolution:
  minute windows, about 1,440 points per capability) of a random device;
* ``devices``: ``GET /api/v1/devices`` (every device with last seen and open alerts).

Prints p50/p95/max per request kind; the last line is JSON.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import time
import urllib.request
from typing import Any

from api.keys import create_key
from api.server import ApiProcess
from core.settings import Settings
from infra.harness import private_settings
from infra.processes import free_port
from infra.store import start_store, stop_store
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client

__all__ = ["fill_store", "run_api_bench"]

TENANT, OTHER = "bench", "bench-other"
DEVICES, CAPABILITIES = 1000, ("temperature", "vibration")
SPAN_MS = 48 * 3_600_000
MINUTE_MS, HOUR_MS = 60_000, 3_600_000

# n -> device n % 1000, capability (n // 1000) % 2, step n // 2000: every series evenly spread
_READINGS = """
INSERT INTO readings (ts, tenant_id, device_id, device_type, sensor_id, capability, value,
                      unit, quality, sequence, reading_id)
SELECT fromUnixTimestamp64Milli(toInt64({start:Int64} + intDiv(number, 2000) * {step:Int64}
                                        + (number % 1000) * 7), 'UTC'),
       if(number % 1000 < 900, {tenant:String}, {other:String}),
       concat('dev-', leftPad(toString(number % 1000), 4, '0')), 'MACHINE', 's1',
       if(intDiv(number, 1000) % 2 = 0, 'temperature', 'vibration'),
       20 + 5 * sin(intDiv(number, 2000) / 100) + (number % 10), 'u', 'GOOD',
       toInt64(intDiv(number, 2000)), toString(number)
FROM numbers({n:UInt64})
"""
_AGGREGATES = """
INSERT INTO aggregates (window_start, window_end, window_size, tenant_id, device_id,
                        device_type, capability, unit, count, mean, min, max, std, first,
                        last, first_ts, last_ts)
SELECT fromUnixTimestamp64Milli(toInt64({start:Int64} + intDiv(number, 2000) * 60000), 'UTC')
         AS ws, ws + toIntervalMinute(1), {label:String},
       if(number % 1000 < 900, {tenant:String}, {other:String}),
       concat('dev-', leftPad(toString(number % 1000), 4, '0')), 'MACHINE',
       if(intDiv(number, 1000) % 2 = 0, 'temperature', 'vibration'), 'u', 2,
       20 + 5 * sin(intDiv(number, 2000) / 100) AS m, m - 1, m + 1, 0.5, m, m, ws,
       ws + toIntervalSecond(59)
FROM numbers({n:UInt64})
"""
_HOURS = """
INSERT INTO aggregates_1h (window_start, window_end, window_size, source_window_size,
                           tenant_id, device_id, device_type, capability, unit, windows, count,
                           sum, sum_sq, mean, std, min, max, first, last, first_ts, last_ts)
SELECT fromUnixTimestamp64Milli(toInt64({start:Int64} + intDiv(number, 2000) * 3600000), 'UTC')
         AS ws, ws + toIntervalHour(1), '1h', {label:String},
       if(number % 1000 < 900, {tenant:String}, {other:String}),
       concat('dev-', leftPad(toString(number % 1000), 4, '0')), 'MACHINE',
       if(intDiv(number, 1000) % 2 = 0, 'temperature', 'vibration'), 'u', 60, 120,
       20 * 120, 400 * 120, 20, 1, 15, 25, 20, 20, ws, ws + toIntervalMinute(59)
FROM numbers({n:UInt64})
"""
# alert k: device k % 1000, first seen k * 1.7 s into the span; every 3rd one resolved
_ALERTS = """
INSERT INTO alerts (alert_id, alert_key, tenant_id, device_id, device_type, capability, rule,
                    severity, state, first_seen, last_seen, resolved_at, duplicates, summary,
                    version, attributes)
SELECT concat(t, '/', d, '/device@', toString(f)), concat(t, '/', d, '/device'), t, d,
       'MACHINE', 'temperature', 'zscore',
       ['INFO', 'WARNING', 'CRITICAL'][number % 3 + 1],
       if(number % 3 = 0, 'RESOLVED', 'FIRING'),
       fromUnixTimestamp64Milli(f, 'UTC'), fromUnixTimestamp64Milli(f + 60000, 'UTC'),
       if(number % 3 = 0, fromUnixTimestamp64Milli(f + 120000, 'UTC'), NULL), number % 5,
       'bench alert', 1, map('bench', '1')
FROM (SELECT number, if(number % 1000 < 900, {tenant:String}, {other:String}) AS t,
             concat('dev-', leftPad(toString(number % 1000), 4, '0')) AS d,
             toInt64({start:Int64} + number * 1700) AS f
      FROM numbers({n:UInt64}))
"""


def fill_store(
    client: Any, settings: Settings, readings: int, alerts: int, now_ms: int
) -> dict[str, int]:
    """Fill the tables server-side; returns the rows of each table."""
    start = (now_ms - SPAN_MS) // MINUTE_MS * MINUTE_MS
    series = DEVICES * len(CAPABILITIES)
    common = {"start": start, "tenant": TENANT, "other": OTHER, "label": settings.window_label}
    steps = max(1, readings // series)
    client.command(_READINGS, parameters={**common, "n": steps * series, "step": SPAN_MS // steps})
    client.command(_AGGREGATES, parameters={**common, "n": series * (SPAN_MS // MINUTE_MS)})
    client.command(_HOURS, parameters={**common, "n": series * (SPAN_MS // HOUR_MS)})
    client.command(_ALERTS, parameters={**common, "n": alerts})
    tables = ("readings", "aggregates", "aggregates_1h", "alerts", "alert_versions")
    return {t: int(client.command(f"SELECT count() FROM {t}")) for t in tables}


def _timed(url: str, key: str) -> tuple[float, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as resp:
        body = json.loads(resp.read())
    return (time.perf_counter() - t0) * 1000, body


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(ordered[-1], 1),
    }


def run_api_bench(
    base: Settings, readings: int = 10_000_000, requests: int = 200, alerts: int = 100_000
) -> dict[str, Any]:
    """Fill a private store, serve the API from it, time ``requests`` calls of each kind."""
    settings = private_settings(
        base,
        "envirostream-api-",
        api_port=free_port(),
        api_rate_per_second=100_000,
        api_rate_burst=1_000_000,
        window_seconds=60,
    )
    api: ApiProcess | None = None
    try:
        start_store(settings)
        client = get_client(settings)
        ClickHouseSink(client, settings).setup()
        now_ms = int(time.time() * 1000)
        t0 = time.perf_counter()
        rows = fill_store(client, settings, readings, alerts, now_ms)
        fill_s = time.perf_counter() - t0
        print(
            f"filled the store in {fill_s:.0f}s: "
            + ", ".join(f"{t} {n:,}" for t, n in rows.items())
        )
        _, key = create_key(client, TENANT, "read", "bench api")
        client.close()
        api = ApiProcess(settings, settings.data_dir / "logs" / "api.log")
        api.wait_ready(120)
        rng = random.Random(7)
        day_start = now_ms - 24 * HOUR_MS
        targets = {
            "alerts": lambda: "/api/v1/alerts?limit=100",
            "history": lambda: (
                f"/api/v1/devices/dev-{rng.randrange(900):04d}/series"
                f"?start_ms={day_start}&end_ms={now_ms}"
            ),
            "devices": lambda: "/api/v1/devices?limit=1000",
        }
        figures: dict[str, Any] = {"readings": rows["readings"], "requests": requests}
        load_before = os.getloadavg()[0]
        for name, path in targets.items():
            for _ in range(3):  # warm-up: connection pools, the first query plans
                _timed(api.url + path(), key)
            timings, sizes = [], []
            for _ in range(requests):
                ms, body = _timed(api.url + path(), key)
                timings.append(ms)
                sizes.append(
                    len(body.get("points") or body.get("alerts") or body.get("devices") or [])
                )
            figures[name] = {**_summary(timings), "items": round(statistics.mean(sizes))}
            if name == "history":
                figures[name]["resolution"] = body["resolution"]
            f = figures[name]
            print(
                f"{name:8} p50 {f['p50_ms']:7.1f} ms   p95 {f['p95_ms']:7.1f} ms   "
                f"max {f['max_ms']:7.1f} ms   ({f['items']:,} items per answer)"
            )
        figures["fill_seconds"] = round(fill_s, 1)
        # Latency on a shared machine follows its load: the 1-minute load average around
        # the timed requests is part of the result.
        figures["load_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        print(f"load average (1 min) before/after the timed requests: {figures['load_1m']}")
    finally:
        if api is not None:
            api.stop()
        stop_store(settings)
        shutil.rmtree(settings.data_dir, ignore_errors=True)
    print(json.dumps(figures))
    return figures
