"""The API's reads: every query filtered by the caller's tenant, every value bound.

Functions take a clickhouse-connect client and return plain rows (dicts) ready for JSON:
times are epoch milliseconds (``*_ms``). SQL text here is constant; whatever comes from a
request travels as a ``{name:Type}`` parameter, never inside the text.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "END_OF_TIME_MS",
    "alert_exists",
    "alert_rows",
    "alert_versions",
    "anomaly_rows",
    "asset_rows",
    "device_capabilities",
    "device_rows",
    "open_alert_counts",
    "open_alerts_by_severity",
    "raw_counts",
    "series_rows",
]

END_OF_TIME_MS = 10**13  # 2286-11-20: beyond anything DateTime64(3) data holds here


def _named(client: Any, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    return list(client.query(sql, parameters=parameters).named_results())


# device_last_seen: one row per device kept by a view on readings (sinks/operator_ddl.py)
_DEVICES = """
SELECT device_id, argMaxMerge(device_type) AS device_type,
       toUnixTimestamp64Milli(max(last_seen)) AS last_seen_ms
FROM device_last_seen
WHERE tenant_id = {tenant:String} AND ({device:String} = '' OR device_id = {device:String})
GROUP BY device_id
"""


def device_rows(client: Any, tenant: str, device: str = "") -> list[dict[str, Any]]:
    """Devices of ``tenant`` that sent readings (one: ``device``) with kind and last seen."""
    return _named(client, _DEVICES, {"tenant": tenant, "device": device})


_ASSETS = """
SELECT device_id, site, location, model, install_date, tags,
       toUnixTimestamp64Milli(updated_at) AS updated_at_ms
FROM assets FINAL
WHERE tenant_id = {tenant:String} AND ({device:String} = '' OR device_id = {device:String})
"""


def asset_rows(client: Any, tenant: str, device: str = "") -> dict[str, dict[str, Any]]:
    """The registry entries of ``tenant`` (one: ``device``), by device id."""
    rows = _named(client, _ASSETS, {"tenant": tenant, "device": device})
    for row in rows:
        date = row["install_date"]
        row["install_date"] = date.isoformat() if date is not None else None
        row["tags"] = list(row["tags"])
    return {row["device_id"]: row for row in rows}


_OPEN_BY_DEVICE = """
SELECT device_id, count() AS open
FROM alerts FINAL
WHERE tenant_id = {tenant:String} AND state != 'RESOLVED'
  AND ({device:String} = '' OR device_id = {device:String})
GROUP BY device_id
"""


def open_alert_counts(client: Any, tenant: str, device: str = "") -> dict[str, int]:
    """Open (FIRING or ACKNOWLEDGED) alerts per device of ``tenant``."""
    rows = _named(client, _OPEN_BY_DEVICE, {"tenant": tenant, "device": device})
    return {row["device_id"]: int(row["open"]) for row in rows}


_OPEN_BY_SEVERITY = """
SELECT severity, count() AS open
FROM alerts FINAL
WHERE tenant_id = {tenant:String} AND state != 'RESOLVED'
GROUP BY severity
"""


def open_alerts_by_severity(client: Any, tenant: str) -> dict[str, int]:
    rows = _named(client, _OPEN_BY_SEVERITY, {"tenant": tenant})
    return {str(row["severity"]): int(row["open"]) for row in rows}


_CAPABILITIES = """
SELECT DISTINCT capability FROM readings
WHERE tenant_id = {tenant:String} AND device_id = {device:String}
ORDER BY capability
"""


def device_capabilities(client: Any, tenant: str, device: str) -> list[str]:
    rows = client.query(_CAPABILITIES, parameters={"tenant": tenant, "device": device})
    return [str(r[0]) for r in rows.result_rows]


_SERIES_FILTER = """
WHERE tenant_id = {tenant:String} AND device_id = {device:String}
  AND ({capability:String} = '' OR capability = {capability:String})
  AND $col >= fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC')
  AND $col < fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC')"""


def _series_where(col: str) -> str:
    """The series filter on the time column ``col`` (a constant of this module)."""
    return _SERIES_FILTER.replace("$col", col)


_RAW_COUNTS = (
    "SELECT capability, count() AS n FROM readings" + _series_where("ts") + " GROUP BY capability"
)
_RAW = (
    "SELECT toUnixTimestamp64Milli(ts) AS ts_ms, capability, value, value AS min, "
    "value AS max, toUInt64(1) AS count FROM readings FINAL"
    + _series_where("ts")
    + " ORDER BY capability, ts LIMIT {limit:UInt32}"
)
_MINUTE = (
    "SELECT toUnixTimestamp64Milli(window_start) AS ts_ms, capability, mean AS value, min, "
    "max, count FROM aggregates FINAL"
    + _series_where("window_start")
    + " AND window_size = {window_size:String} ORDER BY capability, window_start"
    " LIMIT {limit:UInt32}"
)
_HOUR = (
    "SELECT toUnixTimestamp64Milli(window_start) AS ts_ms, capability, mean AS value, min, "
    "max, count FROM aggregates_1h FINAL"
    + _series_where("window_start")
    + " AND source_window_size = {window_size:String} ORDER BY capability, window_start"
    " LIMIT {limit:UInt32}"
)
SERIES_SQL = {"raw": _RAW, "minute": _MINUTE, "hour": _HOUR}


def raw_counts(client: Any, params: dict[str, Any]) -> dict[str, int]:
    """Raw readings per capability in the range of ``params`` (no FINAL: an estimate)."""
    rows = client.query(_RAW_COUNTS, parameters=params).result_rows
    return {str(c): int(n) for c, n in rows}


def series_rows(
    client: Any, resolution: str, params: dict[str, Any], limit: int
) -> list[dict[str, Any]]:
    """Points of one device at ``resolution`` (``raw``, ``minute`` or ``hour``).

    ``params``: tenant, device, capability ('' = all), start_ms, end_ms, window_size (the
    label of the minute windows, e.g. ``1m``).
    """
    return _named(client, SERIES_SQL[resolution], {**params, "limit": limit})


_ANOMALIES = (
    "SELECT toUnixTimestamp64Milli(ts) AS ts_ms, capability, detector, score, threshold, value "
    "FROM anomalies FINAL"
    + _series_where("ts")
    + " AND is_anomaly ORDER BY ts LIMIT {limit:UInt32}"
)


def anomaly_rows(client: Any, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    return _named(client, _ANOMALIES, {**params, "limit": limit})


_ALERT_FIELDS = """
  alert_id, alert_key, device_id, device_type, capability, rule, severity, state,
  toUnixTimestamp64Milli(first_seen) AS first_seen_ms,
  toUnixTimestamp64Milli(last_seen) AS last_seen_ms,
  toUnixTimestamp64Milli(resolved_at) AS resolved_at_ms,
  duplicates, summary, version, attributes"""
_SITE = """
LEFT JOIN (SELECT device_id, site FROM assets FINAL WHERE tenant_id = {tenant:String}) AS s
  ON a.device_id = s.device_id"""
_ALERTS = (
    "SELECT a.*, if(s.site = '', 'unknown', s.site) AS site FROM (SELECT"
    + _ALERT_FIELDS
    + """
  FROM alerts FINAL
  WHERE tenant_id = {tenant:String}
    AND ({state:String} = '' OR state = {state:String})
    AND ({severity:String} = '' OR severity = {severity:String})
    AND ({device:String} = '' OR device_id = {device:String})
    AND last_seen >= fromUnixTimestamp64Milli({start_ms:Int64}, 'UTC')
    AND first_seen < fromUnixTimestamp64Milli({end_ms:Int64}, 'UTC')
  ORDER BY last_seen DESC, alert_id
  LIMIT {limit:UInt32}) AS a"""
    + _SITE
    + "\nORDER BY a.last_seen_ms DESC, a.alert_id"
)


def _alert(row: dict[str, Any]) -> dict[str, Any]:
    row = {k.removeprefix("a."): v for k, v in row.items()}
    row["attributes"] = dict(row["attributes"])
    return row


def alert_rows(client: Any, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest version of each alert matching ``params``, newest first, with its site.

    ``params``: tenant, state, severity, device ('' = any), start_ms, end_ms, limit.
    """
    return [_alert(r) for r in _named(client, _ALERTS, params)]


_VERSIONS = (
    "SELECT a.*, if(s.site = '', 'unknown', s.site) AS site FROM (SELECT"
    + _ALERT_FIELDS
    + """
  FROM alert_versions FINAL
  WHERE tenant_id = {tenant:String} AND alert_id = {alert_id:String}) AS a"""
    + _SITE
    + "\nORDER BY a.version"
)


def alert_versions(client: Any, tenant: str, alert_id: str) -> list[dict[str, Any]]:
    """Every stored version of one alert of ``tenant``, oldest first."""
    rows = _named(client, _VERSIONS, {"tenant": tenant, "alert_id": alert_id})
    return [_alert(r) for r in rows]


def alert_exists(client: Any, tenant: str, alert_id: str) -> bool:
    return bool(
        client.command(
            "SELECT count() FROM alerts WHERE tenant_id = {tenant:String} "
            "AND alert_id = {alert_id:String}",
            parameters={"tenant": tenant, "alert_id": alert_id},
        )
    )
