"""The one DDL source of the ClickHouse tables, identical for the chdb store and a server.

Every table is a ReplacingMergeTree whose sorting key holds a deterministic row identity,
so replaying the same Kafka offsets never changes what ``SELECT ... FINAL`` returns.
``aggregates`` uses ``count`` as its version: a window re-emitted from a partial replay
(fewer readings) never replaces the complete one. Retention (TTL) counts from the time a
row was stored, not from its event time, so replayed historical data is not dropped on
arrival.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.settings import Settings

__all__ = ["TABLES", "TableDef", "codec_changes", "column_additions", "create_statements"]


@dataclass(frozen=True)
class TableDef:
    """A table: its columns in insert order and its engine clause."""

    name: str
    columns: tuple[tuple[str, str], ...]
    engine: str
    order_by: str
    ttl_column: str
    ttl_setting: str  # name of the Settings field holding the retention in days
    # Column -> codec list (``CODEC(...)`` contents), chosen by ``envirostream bench storage``;
    # a column not named keeps the server's default (LZ4). Written as ClickHouse reports it
    # in ``system.columns.compression_codec``, so :func:`codec_changes` compares exactly.
    codecs: Mapping[str, str] = field(default_factory=dict)

    @property
    def column_names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def partition_column(self) -> str:
        """The column whose month is the partition (``PARTITION BY toYYYYMM(...)``)."""
        return self.ttl_column

    def create_sql(self, ttl_days: int) -> str:
        cols = ",\n  ".join(
            f"`{name}` {ctype}{self.codec_clause(name)}" for name, ctype in self.columns
        )
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} (\n  {cols},\n"
            f"  `stored_at` DateTime64(3, 'UTC') DEFAULT now64(3)"
            f"{self.codec_clause('stored_at')}\n)\n"
            f"ENGINE = {self.engine}\n"
            f"PARTITION BY toYYYYMM({self.partition_column})\n"
            f"ORDER BY ({self.order_by})\n"
            f"TTL toDateTime(stored_at) + INTERVAL {ttl_days} DAY"
        )

    def codec_clause(self, column: str) -> str:
        """`` CODEC(...)`` of ``column``, or nothing for the default codec."""
        codec = self.codecs.get(column)
        return f" CODEC({codec})" if codec else ""

    def alter_codec_sql(self, column: str) -> str:
        """The metadata-only change that gives an existing table's ``column`` its codec."""
        codec = self.codecs.get(column) or "Default"
        return f"ALTER TABLE {self.name} MODIFY COLUMN `{column}` CODEC({codec})"

    def add_column_sql(self, column: str) -> str:
        """The change that gives an existing table a ``column`` it was created without."""
        ctype = dict(self.columns)[column]
        return (
            f"ALTER TABLE {self.name} ADD COLUMN IF NOT EXISTS "
            f"`{column}` {ctype}{self.codec_clause(column)}"
        )


_TS = "DateTime64(3, 'UTC')"
_LC = "LowCardinality(String)"
_ATTRIBUTES = f"Map({_LC}, String)"  # a reading's free-form attributes (few distinct keys)

# Codecs chosen by `envirostream bench storage` (docs/storage.md has the measured bytes).
_TIME = "DoubleDelta, ZSTD(1)"  # event times: regular steps per series
_STORED = "Delta(8), ZSTD(1)"  # stored_at (batch times, irregular steps); window times
_FLOAT = "FPC(12)"  # noisy measurements
_Z1 = "ZSTD(1)"
_READINGS_CODECS = {
    "ts": _TIME,
    "device_id": "ZSTD(3)",
    "sensor_id": "ZSTD(3)",
    "value": _FLOAT,
    "sequence": _TIME,
    "reading_id": "ZSTD(3)",
    "stored_at": _STORED,
    **{c: _Z1 for c in ("tenant_id", "device_type", "capability", "unit", "quality")},
    **{c: _Z1 for c in ("scenario", "phase", "attributes")},
}
_AGGREGATES_CODECS = {
    # one row a minute per series: plain deltas beat DoubleDelta here (measured)
    **{c: _STORED for c in ("window_start", "window_end", "first_ts", "last_ts", "stored_at")},
    "device_id": "ZSTD(3)",
    "count": "T64, ZSTD(1)",
    **{c: _FLOAT for c in ("mean", "min", "max", "std", "first", "last")},
    **{c: "ZSTD(3)" for c in ("window_size", "tenant_id", "capability")},
    "device_type": _Z1,
}  # unit: LowCardinality's default measured smallest

TABLES: dict[str, TableDef] = {
    "readings": TableDef(
        "readings",
        (
            ("ts", _TS),
            ("tenant_id", _LC),
            ("device_id", "String"),
            ("device_type", _LC),
            ("sensor_id", "String"),
            ("capability", _LC),
            ("value", "Float64"),
            ("unit", _LC),
            ("quality", _LC),
            ("sequence", "Int64"),
            ("reading_id", "String"),
            ("scenario", _LC),
            ("phase", _LC),
            ("attributes", _ATTRIBUTES),
        ),
        "ReplacingMergeTree",
        "tenant_id, device_id, capability, ts, reading_id",
        "ts",
        "readings_ttl_days",
        _READINGS_CODECS,
    ),
    "aggregates": TableDef(
        "aggregates",
        (
            ("window_start", _TS),
            ("window_end", _TS),
            ("window_size", _LC),
            ("tenant_id", _LC),
            ("device_id", "String"),
            ("device_type", _LC),
            ("capability", _LC),
            ("unit", _LC),
            ("count", "UInt64"),
            ("mean", "Float64"),
            ("min", "Float64"),
            ("max", "Float64"),
            ("std", "Float64"),
            ("first", "Float64"),
            ("last", "Float64"),
            ("first_ts", _TS),
            ("last_ts", _TS),
        ),
        "ReplacingMergeTree(count)",
        "tenant_id, device_id, capability, window_size, window_start",
        "window_start",
        "aggregates_ttl_days",
        _AGGREGATES_CODECS,
    ),
    "anomalies": TableDef(
        "anomalies",
        (
            ("ts", _TS),
            ("tenant_id", _LC),
            ("device_id", "String"),
            ("device_type", _LC),
            ("capability", _LC),
            ("detector", _LC),
            ("score", "Float64"),
            ("threshold", "Float64"),
            ("value", "Float64"),
            ("is_anomaly", "Bool"),
            ("reading_id", "String"),
        ),
        "ReplacingMergeTree",
        "tenant_id, device_id, capability, detector, ts, reading_id",
        "ts",
        "aggregates_ttl_days",
    ),
    "alerts": TableDef(
        "alerts",
        (
            ("alert_id", "String"),
            ("alert_key", "String"),
            ("tenant_id", _LC),
            ("device_id", "String"),
            ("device_type", _LC),
            ("capability", _LC),
            ("rule", _LC),
            ("severity", _LC),
            ("state", _LC),
            ("first_seen", _TS),
            ("last_seen", _TS),
            ("resolved_at", f"Nullable({_TS})"),
            ("duplicates", "UInt64"),
            ("summary", "String"),
            ("version", "UInt64"),
            ("attributes", "Map(String, String)"),
        ),
        "ReplacingMergeTree(version)",
        "tenant_id, alert_key, alert_id",
        "first_seen",
        "aggregates_ttl_days",
    ),
}


def create_statements(settings: Settings) -> list[str]:
    """``CREATE TABLE IF NOT EXISTS`` for every table, with the configured retention."""
    return [t.create_sql(int(getattr(settings, t.ttl_setting))) for t in TABLES.values()]


def codec_changes(table: TableDef, current: Mapping[str, str]) -> list[str]:
    """``ALTER``s giving an existing ``table`` the codecs of this DDL (none when it has them).

    ``current`` maps column -> ``system.columns.compression_codec`` of the table as it is
    (``""`` for the default). Changing a codec is metadata only: new parts are written with
    it, existing parts as they merge; types never change here.

    >>> t = TableDef("t", (("ts", _TS),), "MergeTree", "ts", "ts", "x", {"ts": "ZSTD(1)"})
    >>> codec_changes(t, {"ts": "", "stored_at": ""})
    ['ALTER TABLE t MODIFY COLUMN `ts` CODEC(ZSTD(1))']
    >>> codec_changes(t, {"ts": "CODEC(ZSTD(1))", "stored_at": ""})
    []
    """
    return [
        table.alter_codec_sql(column)
        for column, codec in table.codecs.items()
        if column in current and current[column] != f"CODEC({codec})"
    ]


def column_additions(table: TableDef, current: Mapping[str, str]) -> list[str]:
    """``ALTER``s adding to an existing ``table`` the columns of this DDL it lacks.

    ``current`` maps the columns of the table as it is (as for :func:`codec_changes`);
    empty means there is no such table, and nothing is added. A new column reads as its
    type's default (an empty map, an empty string) in the rows stored before it.

    >>> t = TableDef("t", (("ts", _TS), ("a", _ATTRIBUTES)), "MergeTree", "ts", "ts", "x",
    ...              {"a": "ZSTD(1)"})
    >>> print(*column_additions(t, {"ts": "", "stored_at": ""}))
    ALTER TABLE t ADD COLUMN IF NOT EXISTS `a` Map(LowCardinality(String), String) CODEC(ZSTD(1))
    >>> column_additions(t, {"ts": "", "a": "", "stored_at": ""}), column_additions(t, {})
    ([], [])
    """
    if not current:
        return []
    return [table.add_column_sql(c) for c in table.column_names if c not in current]
