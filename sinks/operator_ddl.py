"""DDL of the operator tables: ``api_keys``, ``assets`` and ``alert_versions``.

Created by the sink's setup beside the pipeline's tables (and by ``envirostream api`` /
``keys`` / ``assets``, which may run before any worker did), identical for chdb and a server:

* ``api_keys`` -- one row per key version (ReplacingMergeTree(updated_at) on ``key_id``): a
  revocation is a newer row with ``revoked_at`` set. Only the SHA-256 of a key is stored.
* ``assets`` -- the asset registry (site, location, model, install date, tags) per
  ``(tenant_id, device_id)``; a newer ``updated_at`` replaces the row.
* ``alert_versions`` -- every version of every alert. ``alerts`` is a
  ReplacingMergeTree(version) whose merges keep only the latest version; a materialized view
  copies each inserted alert row here, keyed by ``(tenant_id, alert_id, version)``, so an
  alert's history survives merges and a replayed insert collapses to the same row.

None of these tables has a TTL: keys and assets are configuration, and alert history is
kept as long as the alerts themselves are wanted (drop partitions by hand when not).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ALERT_VERSION_COLUMNS",
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

OPERATOR_TABLES = ("api_keys", "assets", "alert_versions")

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
# Versions stored before the view existed (an older store): copied once, when the view is new.
BACKFILL_ALERT_VERSIONS = f"INSERT INTO alert_versions ({_NAMES}) SELECT {_NAMES} FROM alerts"


def operator_create_statements() -> list[str]:
    """``CREATE ... IF NOT EXISTS`` of the operator tables and the view (``alerts`` must exist).

    >>> [s.split(" IF NOT EXISTS ")[1].split()[0] for s in operator_create_statements()]
    ['api_keys', 'assets', 'alert_versions', 'alert_versions_mv']
    """
    return [_API_KEYS, _ASSETS, _ALERT_VERSIONS, _ALERT_VERSIONS_MV]


def ensure_operator_tables(client: Any) -> None:
    """Create the operator tables and the alert history view on ``client``'s database.

    ``alerts`` must exist (the sink's setup creates it first). When the view is created
    now, the versions already in ``alerts`` are copied into ``alert_versions`` once.
    """
    had_view = bool(
        client.command(
            "SELECT count() FROM system.tables WHERE database = currentDatabase() "
            "AND name = 'alert_versions_mv'"
        )
    )
    for statement in operator_create_statements():
        client.command(statement)
    if not had_view:
        client.command(BACKFILL_ALERT_VERSIONS)
