"""The embedded store's guard: credentials, origins, read-only GETs and table functions
that reach outside the store, including spellings meant to slip past a text check."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from core.store_password import ensure_store_password, read_store_password
from sinks._store_guard import GuardError, admit, check_sql, foreign_origin

EXPECTED = ("default", "s3cret-pw")


def code_of(sql: str, *, read_only: bool = False, params: dict[str, str] | None = None) -> int:
    try:
        check_sql(sql, read_only=read_only, params=params)
    except GuardError as exc:
        return exc.code
    return 0


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        (basic("default", "s3cret-pw"), {}),
        ({"X-ClickHouse-User": "default", "X-ClickHouse-Key": "s3cret-pw"}, {}),
        ({"X-ClickHouse-Key": "s3cret-pw"}, {}),
        ({}, {"user": "default", "password": "s3cret-pw"}),
        ({}, {"password": "s3cret-pw"}),
    ],
)
def test_every_clickhouse_way_of_giving_the_password_is_accepted(
    headers: dict[str, str], params: dict[str, str]
) -> None:
    admit(headers, params, EXPECTED)  # raises on refusal; the refusals are tested below


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({}, {}),
        ({}, {"password": "wrong"}),
        ({}, {"user": "admin", "password": "s3cret-pw"}),
        (basic("default", "s3cret-p"), {}),
        ({"Authorization": "Basic !!!notbase64"}, {}),
        ({"X-ClickHouse-User": "default", "X-ClickHouse-Key": "S3CRET-PW"}, {}),
        # a wrong header is not rescued by a right URL parameter: the header is the one used
        (basic("default", "wrong"), {"password": "s3cret-pw"}),
    ],
)
def test_missing_or_wrong_credentials_are_refused_with_516_and_401(
    headers: dict[str, str], params: dict[str, str]
) -> None:
    with pytest.raises(GuardError) as err:
        admit(headers, params, EXPECTED)
    assert (err.value.code, err.value.status) == (516, 401)
    assert "AUTHENTICATION_FAILED" in str(err.value)
    assert "s3cret" not in str(err.value) and "wrong" not in str(err.value)


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "https://127.0.0.1.evil.example", "null", "http://10.0.0.5:8123"],
)
def test_foreign_origins_are_refused(origin: str) -> None:
    assert foreign_origin(origin)


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:3000", "http://localhost:8080", "http://[::1]:1"]
)
def test_loopback_origins_pass(origin: str) -> None:
    assert not foreign_origin(origin)


FILE_SPELLINGS = [
    "SELECT * FROM file('/etc/hostname')",
    "SELECT * FROM FILE('/etc/hostname')",
    "SELECT * FROM fIlE  \n\t ('/etc/hostname')",
    "SELECT * FROM file/* a comment */('/etc/hostname')",
    "SELECT * FROM file/* nested /* comment */ */('/etc/hostname')",
    "SELECT * FROM file -- line comment\n('/etc/hostname')",
    "SELECT * FROM file # comment\n('/etc/hostname')",
    "SELECT * FROM `file`('/etc/hostname')",
    "SELECT * FROM \"FILE\"('/etc/hostname')",
    "SELECT * FROM (SELECT * FROM file('/etc/hostname'))",
    "SELECT $$'$$, * FROM file('/etc/hostname') -- '",
    "SELECT '\\'', * FROM file('/etc/hostname')",
    "SELECT * FROM url('http://127.0.0.1:1/')",
    "SELECT * FROM URL ('http://127.0.0.1:1/', CSV)",
    "SELECT * FROM s3('http://x/y')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT * FROM executable('cat /etc/passwd', TSV, 'x String')",
    "SELECT * FROM mysql('h:3306', 'd', 't', 'u', 'p')",
    "SELECT * FROM postgresql('h:5432', 'd', 't', 'u', 'p')",
    "SELECT * FROM hdfs('hdfs://h/x')",
    "INSERT INTO FUNCTION file('/tmp/x.csv') SELECT 1",
    "CREATE TABLE t (a String) ENGINE = File(TSV)",
    "CREATE TABLE t (a String) ENGINE = URL('http://x/', CSV)",
    "SELECT 1 INTO OUTFILE '/tmp/out.tsv'",
    "INSERT INTO t FROM INFILE '/etc/hostname' FORMAT TSV",
]


@pytest.mark.parametrize("sql", FILE_SPELLINGS)
def test_table_functions_that_reach_outside_are_refused_however_spelled(sql: str) -> None:
    assert code_of(sql) == 446


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'file(' AS s",  # inside a literal
        "SELECT 1 -- url('x')",  # inside a comment
        "SELECT file, url FROM t",  # columns named like functions, no call
        "SELECT profile(1)",  # a longer name that ends like one
        "SELECT * FROM numbers(3)",
        "SELECT 1;",
    ],
)
def test_the_same_names_outside_calls_pass(sql: str) -> None:
    assert code_of(sql) == 0


def test_a_parameter_substituted_as_identifier_cannot_name_one() -> None:
    sql = "SELECT * FROM {tf:Identifier}('/etc/hostname')"
    assert code_of(sql, params={"tf": "file"}) == 446
    assert code_of("SELECT {d:String}", params={"d": "file"}) == 0


@pytest.mark.parametrize(
    "sql",
    [
        "DROP TABLE t",
        "  drop table t",
        "/* SELECT */ DROP TABLE t",
        "INSERT INTO t VALUES (1)",
        "ALTER TABLE t DELETE WHERE 1",
        "TRUNCATE TABLE t",
        "CREATE TABLE x (a Int8) ENGINE = Memory",
        "SET max_threads = 1",
        "SYSTEM STOP MERGES",
        "OPTIMIZE TABLE t FINAL",
        "",
    ],
)
def test_read_only_requests_run_only_selects(sql: str) -> None:
    assert code_of(sql, read_only=True) == 164
    if sql.strip():
        assert code_of(sql, read_only=False) == 0  # POST keeps working


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "(SELECT 1) UNION ALL (SELECT 2)",
        "WITH 1 AS x SELECT x",
        "SHOW TABLES",
        "DESCRIBE TABLE t",
        "DESC t",
        "EXISTS TABLE t",
        "EXPLAIN SELECT 1",
        "-- a comment first\nselect 1",
    ],
)
def test_read_only_requests_may_read(sql: str) -> None:
    assert code_of(sql, read_only=True) == 0


@pytest.mark.parametrize(
    "sql", ["SELECT 1; DROP TABLE t", "SELECT 1 ;\n-- c\n DROP TABLE t", "SELECT ';'; DROP TABLE t"]
)
def test_a_second_statement_is_refused(sql: str) -> None:
    assert code_of(sql) == 62


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('/etc/hostname') WHERE 'open",
        "SELECT * FROM numbers(1) /* open file('/etc/hostname')",
        "SELECT $$ open url('http://x/')",
        "SELECT * FROM `url('http://x/')",
    ],
)
def test_text_that_cannot_be_read_to_its_end_is_refused(sql: str) -> None:
    assert code_of(sql) == 62


def test_the_password_file_is_generated_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "d" / "store.password"
    first = ensure_store_password(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_store_password(path) == first == read_store_password(path)
    other = ensure_store_password(tmp_path / "e" / "store.password")
    assert other != first  # one random password per data dir
    path.chmod(0o644)
    ensure_store_password(path)
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_large_values_insert_is_checked_without_reading_every_token() -> None:
    rows = ",".join(f"({i}, 'dev-{i}', 1.5)" for i in range(30_000))
    assert code_of(f"INSERT INTO t VALUES {rows}") == 0
    assert code_of(f"INSERT INTO t VALUES {rows}, ((SELECT * FROM file('/x')))") == 446
    assert code_of(f"INSERT INTO t VALUES {rows}; DROP TABLE t") == 62
