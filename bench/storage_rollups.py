"""The rollup half of ``envirostream bench storage``: month-long queries, rollups vs minutes.

A month of minute windows (``aggregates``, DDL of ``sinks/ddl.py``) for every (device,
capability) series of a seeded fleet is generated inside the store with one
``INSERT … SELECT FROM numbers()`` per day (a daily cycle plus hash noise: deterministic,
no Python rows). The rollups are then filled by ``sinks.rollups.refresh_rollups`` (the
backfill form of what the sink runs after each insert), and three month-long queries that
operators run are timed on the minute table and on the rollups, best of ``REPEATS``, both
with ``FINAL`` (as the tables are read for exact answers). Queries over the whole fleet
read every series, so their time grows with the fleet: the 1,000-device figure is the
measured one scaled by ``1000 / devices`` (stated as a projection in the output); the
one-device query reads only that device's rows (sorting key) and does not grow.
"""

from __future__ import annotations

import time
from typing import Any

from core.settings import Settings
from producers.models import KINDS
from producers.simulator import SimulationConfig
from sinks.ddl import TABLES
from sinks.rollups import DAY_MS, refresh_rollups, rollup_create_statements

__all__ = ["QUERIES", "run_rollup_bench"]

START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
REPEATS = 3
FLEET_TARGET = 1000

_GENERATE = """
INSERT INTO aggregates (window_start, window_end, window_size, tenant_id, device_id,
                        device_type, capability, unit, count, mean, min, max, std, first,
                        last, first_ts, last_ts, stored_at)
SELECT fromUnixTimestamp64Milli(ws, 'UTC'), fromUnixTimestamp64Milli(ws + 60000, 'UTC'), '1m',
       'default', devs[i], types[i], caps[i], units[i], 60, m, m - 2.5 * s, m + 2.5 * s, s,
       m - 0.3 * s, m + 0.2 * s, fromUnixTimestamp64Milli(ws, 'UTC'),
       fromUnixTimestamp64Milli(ws + 59000, 'UTC'), fromUnixTimestamp64Milli(ws + 72000, 'UTC')
FROM (
  SELECT {devs:Array(String)} AS devs, {types:Array(String)} AS types,
         {caps:Array(String)} AS caps, {units:Array(String)} AS units,
         number % length(devs) + 1 AS i, intDiv(number, length(devs)) AS minute,
         {lo:Int64} + minute * 60000 AS ws,
         cityHash64(i, {seed:UInt64}) % 1000 / 10 AS level,
         level + 5 * sin((ws % 86400000) / 86400000 * 2 * pi())
           + (cityHash64(i, ws, {seed:UInt64}) % 10000) / 5000 - 1 AS m,
         0.2 + (cityHash64(ws, i) % 100) / 200 AS s
  FROM numbers({rows:UInt64})
)
"""

# name -> (minute-table SQL, rollup SQL); {lo}/{hi} bound the month, {device} one device.
QUERIES: dict[str, tuple[str, str]] = {
    "fleet_daily_per_series": (
        "SELECT device_id, capability, toStartOfDay(window_start) AS d, "
        "sum(mean * count) / sum(count), min(min), max(max), sum(count) "
        "FROM aggregates FINAL WHERE window_start >= {lo} AND window_start < {hi} "
        "GROUP BY device_id, capability, d",
        "SELECT device_id, capability, window_start, mean, min, max, count "
        "FROM aggregates_1d FINAL WHERE window_start >= {lo} AND window_start < {hi}",
    ),
    "fleet_hourly_per_capability": (
        "SELECT capability, toStartOfHour(window_start) AS h, sum(mean * count) / sum(count), "
        "min(min), max(max) FROM aggregates FINAL "
        "WHERE window_start >= {lo} AND window_start < {hi} GROUP BY capability, h",
        "SELECT capability, window_start, sum(sum) / sum(count), min(min), max(max) "
        "FROM aggregates_1h FINAL WHERE window_start >= {lo} AND window_start < {hi} "
        "GROUP BY capability, window_start",
    ),
    "one_device_hourly": (
        "SELECT capability, toStartOfHour(window_start) AS h, sum(mean * count) / sum(count), "
        "min(min), max(max) FROM aggregates FINAL WHERE tenant_id = 'default' AND "
        "device_id = {device} AND window_start >= {lo} AND window_start < {hi} "
        "GROUP BY capability, h",
        "SELECT capability, window_start, mean, min, max FROM aggregates_1h FINAL "
        "WHERE tenant_id = 'default' AND device_id = {device} AND window_start >= {lo} "
        "AND window_start < {hi}",
    ),
}


def _timed(client: Any, sql: str) -> tuple[float, int]:
    best, rows = float("inf"), 0
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        rows = len(client.query(sql).result_rows)
        best = min(best, time.perf_counter() - t0)
    return best, rows


def _bytes(client: Any, table: str) -> tuple[int, int]:
    disk, rows = client.query(
        "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts "
        "WHERE database = currentDatabase() AND table = {t:String} AND active",
        parameters={"t": table},
    ).result_rows[0]
    return int(disk), int(rows)


def run_rollup_bench(
    client: Any, settings: Settings, devices: int, days: int, seed: int
) -> dict[str, Any]:
    st = SimulationConfig(devices=devices, kinds=KINDS, seed=seed).fleet().static
    # A window is per (device, capability): sensors sharing a capability share its windows.
    meta = {
        (d, c): (t, u)
        for d, t, c, u in zip(
            st.device_ids, st.device_types, st.capabilities, st.units, strict=True
        )
    }
    series = len(meta)
    print(
        f"\nrollups: {devices:,} devices ({series:,} series) x {days} days of minute windows "
        f"= {series * days * 1440:,} rows",
        flush=True,
    )
    client.command(TABLES["aggregates"].create_sql(3650))
    for statement in rollup_create_statements(settings):
        client.command(statement)
    params = {
        "devs": [d for d, _ in meta],
        "types": [t for t, _ in meta.values()],
        "caps": [c for _, c in meta],
        "units": [u for _, u in meta.values()],
        "seed": seed,
        "rows": series * 1440,
    }
    t0 = time.perf_counter()
    for day in range(days):
        client.command(_GENERATE, parameters={**params, "lo": START_MS + day * DAY_MS})
    generate_s = time.perf_counter() - t0
    hi_ms = START_MS + days * DAY_MS
    t0 = time.perf_counter()
    refresh_rollups(client, None, START_MS, hi_ms)
    rollup_s = time.perf_counter() - t0
    # What the sink adds to each aggregates insert: the refresh after one minute of the fleet.
    last_minute = hi_ms - 60_000
    keys = [("default", d, c, "1m", last_minute) for d, c in meta]
    refresh_s = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        refresh_rollups(client, keys)
        refresh_s = min(refresh_s, time.perf_counter() - t0)
    print(
        f"  refresh after one minute of the fleet's windows ({series:,} series): "
        f"{refresh_s * 1000:.0f} ms (best of {REPEATS})",
        flush=True,
    )
    for table in ("aggregates", "aggregates_1h", "aggregates_1d"):
        client.command(f"OPTIMIZE TABLE {table} FINAL")
    sizes = {t: _bytes(client, t) for t in ("aggregates", "aggregates_1h", "aggregates_1d")}
    print(
        f"  generated in {generate_s:.1f} s; rollups filled from it in {rollup_s:.1f} s; "
        + ", ".join(f"{t} {r:,} rows {d / 2**20:.1f} MiB" for t, (d, r) in sizes.items()),
        flush=True,
    )
    fmt = {
        "lo": f"toDateTime64({START_MS // 1000}, 3, 'UTC')",
        "hi": f"toDateTime64({hi_ms // 1000}, 3, 'UTC')",
        "device": f"'{st.device_ids[0]}'",
    }
    scale = FLEET_TARGET / devices
    out: dict[str, Any] = {
        "devices": devices,
        "series": series,
        "days": days,
        "minute_rows": sizes["aggregates"][1],
        "generate_s": round(generate_s, 2),
        "rollup_fill_s": round(rollup_s, 2),
        "refresh_per_minute_insert_s": round(refresh_s, 4),
        "bytes": {t: d for t, (d, _) in sizes.items()},
        "queries": {},
    }
    print(f"  query (month, FINAL, best of {REPEATS})   minutes (s)   rollup (s)   speed-up")
    for name, (minutes_sql, rollup_sql) in QUERIES.items():
        t_min, n_min = _timed(client, minutes_sql.format(**fmt))
        t_roll, n_roll = _timed(client, rollup_sql.format(**fmt))
        fleet_wide = name.startswith("fleet")
        entry = {
            "minutes_s": round(t_min, 4),
            "rollup_s": round(t_roll, 4),
            "speedup": round(t_min / t_roll, 1),
            "result_rows": [n_min, n_roll],
        }
        if fleet_wide:
            entry["projected_1000_devices_minutes_s"] = round(t_min * scale, 2)
            entry["projected_1000_devices_rollup_s"] = round(t_roll * scale, 3)
        out["queries"][name] = entry
        print(
            f"  {name:<36} {t_min:>9.3f}   {t_roll:>9.4f}   {t_min / t_roll:>6.1f}x"
            f"   ({n_min:,} / {n_roll:,} rows)",
            flush=True,
        )
    if devices != FLEET_TARGET:
        print(
            f"  projection (not measured): fleet-wide queries scan every series, x{scale:g} "
            f"for {FLEET_TARGET:,} devices: "
            + ", ".join(
                f"{n} {q['projected_1000_devices_minutes_s']} s vs "
                f"{q['projected_1000_devices_rollup_s']} s"
                for n, q in out["queries"].items()
                if "projected_1000_devices_minutes_s" in q
            ),
            flush=True,
        )
    return out
