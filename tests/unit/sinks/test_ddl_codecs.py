"""The codecs of the DDL name real columns and reach the CREATE statements; the rollups'
retention is their own setting."""

from __future__ import annotations

from core.settings import load_settings
from sinks.ddl import TABLES, codec_changes, column_additions
from sinks.rollups import rollup_create_statements


def test_every_codec_names_a_column_of_its_table() -> None:
    for table in TABLES.values():
        columns = {*table.column_names, "stored_at"}
        assert set(table.codecs) <= columns, table.name


def test_create_statements_carry_each_codec_on_its_column() -> None:
    for table in TABLES.values():
        lines = table.create_sql(30).splitlines()
        for column, codec in table.codecs.items():
            line = next(x for x in lines if x.strip().startswith(f"`{column}`"))
            assert line.rstrip(",").endswith(f"CODEC({codec})"), (table.name, column)


def test_an_old_table_without_codecs_gets_one_alter_per_codec_and_no_type_change() -> None:
    readings = TABLES["readings"]
    old = {c: "" for c in [*readings.column_names, "stored_at"]}
    alters = codec_changes(readings, old)
    assert len(alters) == len(readings.codecs) > 0
    for sql in alters:
        assert sql.startswith("ALTER TABLE readings MODIFY COLUMN `")
        assert " CODEC(" in sql
        assert "String" not in sql and "Float64" not in sql and "DateTime64" not in sql


def test_a_column_missing_from_an_old_table_is_left_alone() -> None:
    readings = TABLES["readings"]
    assert codec_changes(readings, {"ts": ""}) == [readings.alter_codec_sql("ts")]


def test_an_old_readings_table_without_attributes_gets_the_column_once() -> None:
    readings = TABLES["readings"]
    old = {c: "" for c in [*readings.column_names, "stored_at"] if c != "attributes"}
    assert column_additions(readings, old) == [
        "ALTER TABLE readings ADD COLUMN IF NOT EXISTS "
        "`attributes` Map(LowCardinality(String), String) CODEC(ZSTD(1))"
    ]
    # once it has the column (any codec), nothing more is added; a missing table gets nothing
    assert column_additions(readings, {**old, "attributes": ""}) == []
    assert column_additions(readings, {}) == []


def test_every_table_as_it_is_created_needs_no_addition() -> None:
    for table in TABLES.values():
        full = {c: "" for c in [*table.column_names, "stored_at"]}
        assert column_additions(table, full) == [], table.name


def test_rollups_keep_their_own_retention() -> None:
    statements = rollup_create_statements(load_settings({"ENVIROSTREAM_ROLLUPS_TTL_DAYS": "9"}))
    assert [s.split()[5] for s in statements] == ["aggregates_1h", "aggregates_1d"]
    for sql in statements:
        assert "ReplacingMergeTree(count)" in sql
        assert sql.endswith("INTERVAL 9 DAY")
