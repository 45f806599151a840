"""DDL of the operator tables: ``api_keys``, ``assets`` and ``alert_versions``.

Created by the sink's setup beside the pipeline's tables (and by ``envirostream api`` /
``keys`` / ``assets``, which may run before any worker did), identical for chdb and a server:

* ``api_keys`` -- one row per key version (ReplacingMergeTree(updated_at) on ``key_id``): a
  revocation is a newer row with ``revoked_at`` set. Only the SHA-256 of a key is stored.
* ``assets`` -- the asset registry (site, location, model, install date, tags) per
  ``(tenant_id, device_id)``; a newer ``updated_at`` replaces the row.
* ``device_last_seen`` -- per ``(tenant_id, device_id)`` the newest reading's time and the
  device type then (AggregatingMergeTree, filled by a view on ``readings`` inserts): device
  listings read one row per device instead of scanning the readings. ``max`` and ``argMax``
  give the same answer however often a replay inserts the same rows.
* ``alert_versions`` -- every version of every alert. ``alerts`` is a
  ReplacingMergeTree(version) whose merges keep only the latest version; a materialized view
  copies each inserted alert row here, keyed by ``(tenant_id, alert_id, version)``, so an
  alert's history survives merges and a replayed insert collapses to the same row.

None of these tables has a TTL: keys and assets are configuration, a device's last reading
stays known after its readings expire, and alert history is kept as long as the alerts
themselves are wanted (drop partitions by hand when not).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ALERT_VERSION_COLUMNS",
    "BACKFILLS",
    "OPERATOR_TABLES",
    "ensure_operator_tables",
    "operator_create_statements",
]

_TS = "DateTime64(3, 'UTC')"
_LC = "LowCardinality(String)"

ALERT_VERSION_COLUMNS = (
    "alert_id", "alert_key", "tenant_id", "device_id", "device_type", "capability", "rule",
    "severity", "state", "first_seen", "last_seen", "resolved_at", "duplicates", "summary",
    "version", "attributes",
)  # fmt: skip

OPERATOR_TABLES = ("api_keys", "assets", "device_last_seen", "alert_versions")

_API_KEYS = f"""CREATE TABLE IF NOT EXISTS api_keys (
  `key_id` String,
  `key_hash` String,
  `tenant_id` {_LC},
  `name` String,
  `scope` {_LC},
  `created_at` {_TS},
  `revoked_at` Nullable({_TS}),
  `updated_at` {_TS}
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY key_id"""

_ASSETS = f"""CREATE TABLE IF NOT EXISTS assets (
  `tenant_id` {_LC},
  `device_id` String,
  `site` String,
  `location` String,
  `model` String,
  `install_date` Nullable(Date),
  `tags` Array(String),
  `updated_at` {_TS}
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant_id, device_id)"""

_LAST_SEEN = f"""CREATE TABLE IF NOT EXISTS device_last_seen (
  `tenant_id` {_LC},
  `device_id` String,
  `device_type` AggregateFunction(argMax, {_LC}, {_TS}),
  `last_seen` SimpleAggregateFunction(max, {_TS})
)
ENGINE = AggregatingMergeTree
ORDER BY (tenant_id, device_id)"""
_LAST_SEEN_SELECT = (
    "SELECT tenant_id, device_id, argMaxState(device_type, ts) AS device_type, "
    "max(ts) AS last_seen FROM readings GROUP BY tenant_id, device_id"
)
_LAST_SEEN_MV = (
    "CREATE MATERIALIZED VIEW IF NOT EXISTS device_last_seen_mv TO device_last_seen "
    f"AS {_LAST_SEEN_SELECT}"
)

_ALERT_VERSIONS = f"""CREATE TABLE IF NOT EXISTS alert_versions (
  `alert_id` String,
  `alert_key` String,
  `tenant_id` {_LC},
  `device_id` String,
  `device_type` {_LC},
  `capability` {_LC},
  `rule` {_LC},
  `severity` {_LC},
  `state` {_LC},
  `first_seen` {_TS},
  `last_seen` {_TS},
  `resolved_at` Nullable({_TS}),
  `duplicates` UInt64,
  `summary` String,
  `version` UInt64,
  `attributes` Map(String, String),
  `stored_at` {_TS} DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(first_seen)
ORDER BY (tenant_id, alert_id, version)"""

_NAMES = ", ".join(ALERT_VERSION_COLUMNS)
_ALERT_VERSIONS_MV = (
    "CREATE MATERIALIZED VIEW IF NOT EXISTS alert_versions_mv TO alert_versions "
    f"AS SELECT {_NAMES} FROM alerts"
)
# Rows stored before a view existed (an older store): copied once, when the view is new.
BACKFILLS = {
    "device_last_seen_mv": f"INSERT INTO device_last_seen {_LAST_SEEN_SELECT}",
    "alert_versions_mv": f"INSERT INTO alert_versions ({_NAMES}) SELECT {_NAMES} FROM alerts",
}


def operator_create_statements() -> list[str]:
    """``CREATE ... IF NOT EXISTS`` of the operator tables and the view (``alerts`` must exist).

    >>> [s.split(" IF NOT EXISTS ")[1].split()[0] for s in operator_create_statements()]
    ['api_keys', 'assets', 'device_last_seen', 'device_last_seen_mv', 'alert_versions', \
'alert_versions_mv']
    """
    return [_API_KEYS, _ASSETS, _LAST_SEEN, _LAST_SEEN_MV, _ALERT_VERSIONS, _ALERT_VERSIONS_MV]


def ensure_operator_tables(client: Any) -> None:
    """Create the operator tables and their views on ``client``'s database.

    ``readings`` and ``alerts`` must exist (the sink's setup creates them first). A view
    created now first gets the rows already stored (:data:`BACKFILLS`).
    """
    existing = client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND name IN {views:Array(String)}",
        parameters={"views": list(BACKFILLS)},
    ).result_rows
    had = {str(row[0]) for row in existing}
    for statement in operator_create_statements():
        client.command(statement)
    for view, backfill in BACKFILLS.items():
        if view not in had:
            client.command(backfill)
