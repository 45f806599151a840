"""The embedded store as clients see it: a real ``python -m sinks.store`` process (real chdb
engine behind the real HTTP server), driven by clickhouse-connect and plain HTTP.

Every expected value is computed in Python from the data the test sent, never read back
from the code under test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from core.errors import ConfigurationError, ServiceUnavailableError
from core.settings import Settings, load_settings
from core.store_password import read_store_password
from infra.processes import free_port
from infra.store import start_store, stop_store, store_status
from sinks.client import get_client

pytestmark = pytest.mark.integration

MASK = (1 << 64) - 1
ROWS = 1_000_000
TABLE_COLUMNS = (
    "id UInt64, ts DateTime64(3), s String, lc LowCardinality(String), x Float64, u UInt64, "
    "n Nullable(String)"
)
COLUMN_NAMES = ["id", "ts", "s", "lc", "x", "u", "n"]


def make_store_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp / "data",
        "store_port": free_port(),
        "clickhouse_database": "envirostream_test",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One running store for the module (the SIGKILL test restarts it on the same data)."""
    settings = make_store_settings(tmp_path_factory.mktemp("store"))
    try:
        start_store(settings)
    except Exception as exc:
        stop_store(settings)
        pytest.fail(f"could not start the store: {exc}")
    yield settings
    stop_store(settings)


def plain_client(settings: Settings, **kwargs: Any) -> Client:
    """clickhouse-connect as a third-party tool would use it (default settings)."""
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=settings.store_port, password=password(settings), **kwargs
    )


def password(settings: Settings) -> str:
    """The store's generated password (a third-party tool is given it like any ClickHouse's)."""
    return read_store_password(settings.store_password_path) or ""


# -- (1) large inserts under every compression come back exactly ---------------------------
@dataclass(frozen=True)
class Dataset:
    columns: list[list[Any]]
    expected: dict[str, int]


CHECKS = {
    "rows": "count()",
    "ids": "sum(id)",
    "ts": "sum(id * toUInt64(toUnixTimestamp64Milli(ts)))",
    "s": "sum(id * CRC32(s))",
    "lc": "sum(id * CRC32(lc))",
    "x": "sum(id * reinterpretAsUInt64(x))",
    "u": "sum(id * u)",
    "n": "sum(id * CRC32(ifNull(n, '<null>')))",
    "nulls": "countIf(n IS NULL)",
}


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    """1M rows of seven column types and their checksums, computed here in Python.

    Each checksum multiplies by the row id, so a value landing in the wrong row fails too.
    """
    base = datetime(2026, 1, 1, tzinfo=UTC)
    ids = list(range(ROWS))
    ts = [base + timedelta(milliseconds=7 * i + (i % 1000)) for i in ids]
    s = [f"reading-{i:07d}-{'é' if i % 3 == 0 else 'x'}" * (1 + i % 3) for i in ids]
    lc = [("grid", "battery", "vehicle", "machine")[i % 4] for i in ids]
    x = [(i * 0.001 - 300.0) / 7.0 for i in ids]
    u = [(i * 0x9E3779B97F4A7C15) & MASK for i in ids]
    n = [None if i % 5 == 0 else f"n{i % 97}" for i in ids]
    millis = [7 * i + (i % 1000) + int(base.timestamp() * 1000) for i in ids]
    bits = [struct.unpack("<Q", struct.pack("<d", v))[0] for v in x]
    expected = {
        "rows": ROWS,
        "ids": sum(ids) & MASK,
        "ts": sum(i * m for i, m in zip(ids, millis, strict=True)) & MASK,
        "s": sum(i * _crc(v) for i, v in zip(ids, s, strict=True)) & MASK,
        "lc": sum(i * _crc(v) for i, v in zip(ids, lc, strict=True)) & MASK,
        "x": sum(i * b for i, b in zip(ids, bits, strict=True)) & MASK,
        "u": sum(i * v for i, v in zip(ids, u, strict=True)) & MASK,
        "n": sum(i * _crc("<null>" if v is None else v) for i, v in zip(ids, n, strict=True))
        & MASK,
        "nulls": sum(1 for v in n if v is None),
    }
    return Dataset([ids, ts, s, lc, x, u, n], expected)


def _checksums(client: Client, table: str) -> dict[str, int]:
    sql = "SELECT " + ", ".join(f"{expr} AS check_{name}" for name, expr in CHECKS.items())
    row = client.query(f"{sql} FROM {table}").result_rows[0]
    return {name: int(value) for name, value in zip(CHECKS, row, strict=True)}


@pytest.mark.parametrize("compress", [False, True, "lz4", "zstd", "gzip"])
def test_million_rows_round_trip_under_every_compression(
    store: Settings, dataset: Dataset, compress: bool | str
) -> None:
    client = get_client(store, compress=compress)
    table = f"million_{str(compress).lower()}"
    client.command(f"CREATE TABLE {table} ({TABLE_COLUMNS}) ENGINE = MergeTree ORDER BY id")
    summary = client.insert(table, dataset.columns, column_names=COLUMN_NAMES, column_oriented=True)
    assert summary.written_rows == ROWS
    assert _checksums(client, table) == dataset.expected
    if compress == "zstd":  # read a large result back too (Native over HTTP, decoded)
        result = client.query(f"SELECT id, s, x, n FROM {table} ORDER BY id")
        got = list(zip(*result.result_rows, strict=True))
        assert list(got[1]) == dataset.columns[2]
        assert list(got[2]) == dataset.columns[4]
        assert list(got[3]) == dataset.columns[6]
    client.close()


# -- (2) concurrent writers and readers ----------------------------------------------------
def test_concurrent_writers_and_readers(store: Settings) -> None:
    setup = get_client(store)
    setup.command(
        "CREATE TABLE concurrent (writer UInt8, batch UInt32, i UInt32, v Float64) "
        "ENGINE = MergeTree ORDER BY (writer, batch, i)"
    )
    writers, batches, rows = 4, 15, 5_000
    errors: list[BaseException] = []
    reads = [0]
    done = threading.Event()

    def write(w: int) -> None:
        # Half the writers use sessions (as clickhouse-connect does by default).
        client = get_client(store, autogenerate_session_id=w % 2 == 0, compress=w % 2 == 1)
        try:
            for b in range(batches):
                data = [[w, b, i, i * 0.5] for i in range(rows)]
                client.insert("concurrent", data, column_names=["writer", "batch", "i", "v"])
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    def read() -> None:
        client = get_client(store)
        try:
            while not done.is_set():
                count = client.query("SELECT count() FROM concurrent").result_rows[0][0]
                assert 0 <= count <= writers * batches * rows
                client.query("SELECT writer, sum(v) FROM concurrent GROUP BY writer")
                reads[0] += 1
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    write_threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    read_threads = [threading.Thread(target=read) for _ in range(3)]
    for t in write_threads + read_threads:
        t.start()
    for t in write_threads:
        t.join(timeout=120)
    done.set()
    for t in read_threads:
        t.join(timeout=30)
    assert errors == []
    assert reads[0] > 0
    per_writer = setup.query(
        "SELECT writer, count(), uniqExact(batch), sum(i) FROM concurrent GROUP BY writer "
        "ORDER BY writer"
    ).result_rows
    expected_sum = batches * sum(range(rows))
    assert per_writer == [(w, batches * rows, batches, expected_sum) for w in range(writers)]


# -- (3) acknowledged inserts survive SIGKILL ------------------------------------------------
def test_acknowledged_inserts_survive_sigkill(store: Settings) -> None:
    client = get_client(store)
    client.command(
        "CREATE TABLE durable (batch UInt32, i UInt32) ENGINE = MergeTree ORDER BY (batch, i)"
    )
    acknowledged: list[int] = []
    stop = threading.Event()

    def write() -> None:
        writer = get_client(store)
        batch = 0
        while not stop.is_set():
            try:
                writer.insert(
                    "durable", [[batch, i] for i in range(2_000)], column_names=["batch", "i"]
                )
            except Exception:
                return  # the store was killed: this batch was not acknowledged
            acknowledged.append(batch)
            batch += 1

    thread = threading.Thread(target=write)
    thread.start()
    deadline = time.monotonic() + 30
    while len(acknowledged) < 20 and time.monotonic() < deadline:
        time.sleep(0.02)
    pid = store_status(store)["pid"]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # while the writer is still inserting
    stop.set()
    thread.join(timeout=30)
    acked = list(acknowledged)
    assert len(acked) >= 20

    new_pid = start_store(store)
    assert new_pid != pid
    client = get_client(store)
    rows = client.query(
        "SELECT batch, count() FROM durable GROUP BY batch ORDER BY batch"
    ).result_rows
    stored: dict[int, int] = {int(batch): int(count) for batch, count in rows}
    missing = [b for b in acked if stored.get(b) != 2_000]
    assert missing == [], f"acknowledged batches lost or partial after SIGKILL: {missing}"
    # At most the one batch in flight at the kill may be there without an acknowledgement.
    assert set(stored) - set(acked) <= {len(acked)}


# -- (4) SQL errors reach the client with their ClickHouse code ---------------------------
def test_sql_errors_carry_the_clickhouse_code(store: Settings) -> None:
    client = get_client(store)
    with pytest.raises(DatabaseError) as unknown:
        client.query("SELECT * FROM no_such_table")
    assert unknown.value.code == 60
    assert "no_such_table" in str(unknown.value)
    with pytest.raises(DatabaseError) as syntax:
        client.command("SELEC 1")
    assert syntax.value.code == 62
    client.command("CREATE TABLE typed (a UInt8) ENGINE = MergeTree ORDER BY a")
    with pytest.raises(DatabaseError) as bad_row:  # an error raised inside a streamed insert
        client.command("INSERT INTO typed FORMAT CSV\nnot-a-number\n")
    assert bad_row.value.code not in (None, 1000, 1001)
    assert client.query("SELECT count() FROM typed").result_rows == [(0,)]

    url = f"http://127.0.0.1:{store.store_port}/?" + urllib.parse.urlencode(
        {"query": "SELECT * FROM no_such_table", "password": password(store)}
    )
    with pytest.raises(urllib.error.HTTPError) as raw:
        urllib.request.urlopen(url, timeout=10)
    assert raw.value.code == 404
    assert raw.value.headers["X-ClickHouse-Exception-Code"] == "60"
    assert raw.value.read().decode().startswith("Code: 60. DB::Exception:")


def test_rejected_inserts_are_errors_and_store_nothing(store: Settings) -> None:
    """Blocks the engine refuses after parsing (a CHECK constraint, too many partitions)
    were answered 200 with rows "written" by chdb's streamed insert; a client then
    committed past rows that were never stored."""
    client = get_client(store)
    client.command(
        "CREATE TABLE checked (x Int32, CONSTRAINT positive CHECK x > 0) "
        "ENGINE = MergeTree ORDER BY x"
    )
    with pytest.raises(DatabaseError) as violated:
        client.insert("checked", [[-1], [5]], column_names=["x"])
    assert violated.value.code == 469  # VIOLATED_CONSTRAINT
    assert client.query("SELECT count() FROM checked").result_rows == [(0,)]

    client.command(
        "CREATE TABLE monthly (d Date, x Int32) ENGINE = MergeTree "
        "PARTITION BY toYYYYMM(d) ORDER BY x"
    )
    months = [[datetime(2010 + i // 12, i % 12 + 1, 1, tzinfo=UTC).date(), i] for i in range(120)]
    with pytest.raises(DatabaseError) as too_many:
        client.insert("monthly", months, column_names=["d", "x"])
    assert too_many.value.code == 252  # TOO_MANY_PARTS
    assert client.query("SELECT count() FROM monthly").result_rows == [(0,)]
    # The same block within the limit the client may raise is stored whole.
    client.insert(
        "monthly",
        months,
        column_names=["d", "x"],
        settings={"max_partitions_per_insert_block": 1000},
    )
    assert client.query("SELECT count(), sum(x) FROM monthly").result_rows == [
        (120, sum(range(120)))
    ]


def test_query_parameters_too_long_for_a_url_arrive_as_a_form(store: Settings) -> None:
    """clickhouse-connect sends bound parameters over 4 kB as multipart form data."""
    client = get_client(store)
    ids = [f"device-{i:05d}" for i in range(2_000)]  # ~30 kB of parameter
    got = client.query(
        "SELECT count(), sum(length(x)) FROM (SELECT arrayJoin({ids:Array(String)}) AS x)",
        parameters={"ids": ids},
    ).result_rows
    assert got == [(len(ids), sum(len(i) for i in ids))]


# -- (5) sessions and databases do not leak between clients --------------------------------
def test_sessions_do_not_leak_use_or_settings(store: Settings) -> None:
    setup = get_client(store)
    setup.command("CREATE DATABASE IF NOT EXISTS session_a")
    setup.command("CREATE TABLE session_a.only_here (a UInt8) ENGINE = MergeTree ORDER BY a")
    a = plain_client(store, session_id="session-a")
    b = plain_client(store, session_id="session-b")
    fresh = plain_client(store, autogenerate_session_id=False)

    a.command("USE session_a")
    a.command("SET max_threads = 3")
    assert a.query("SELECT currentDatabase(), getSetting('max_threads')").result_rows == [
        ("session_a", 3)
    ]
    a.query("SELECT count() FROM only_here")  # unqualified: resolved in session_a
    assert b.query("SELECT currentDatabase()").result_rows == [("default",)]
    assert b.query("SELECT getSetting('max_threads')").result_rows[0][0] != 3
    with pytest.raises(DatabaseError) as not_here:
        b.query("SELECT count() FROM only_here")
    assert not_here.value.code == 60

    # Without a session nothing persists from one request to the next.
    fresh.command("USE session_a")
    assert fresh.query("SELECT currentDatabase()").result_rows == [("default",)]

    # A setting passed with one request holds for that request only, even in a session.
    with_setting = a.query("SELECT getSetting('max_block_size')", settings={"max_block_size": 1234})
    assert with_setting.result_rows == [(1234,)]
    assert a.query("SELECT getSetting('max_block_size')").result_rows[0][0] != 1234
    assert a.query("SELECT getSetting('max_threads')").result_rows == [(3,)]

    # The factory's database parameter wins over any session state.
    other = get_client(store, database="session_a")
    assert other.query("SELECT currentDatabase()").result_rows == [("session_a",)]
    for client in (a, b, fresh, other):
        client.close()


# -- the HTTP interface as curl and dashboards use it --------------------------------------
def _get(settings: Settings, sql: str, **params: str) -> tuple[int, dict[str, str], bytes]:
    query = urllib.parse.urlencode({"query": sql, "password": password(settings), **params})
    url = f"http://127.0.0.1:{settings.store_port}/?{query}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, dict(resp.headers), resp.read()


def test_http_formats_params_and_ping(store: Settings) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{store.store_port}/ping", timeout=5) as resp:
        assert resp.read() == b"Ok.\n"
    status, headers, body = _get(store, "SELECT 1 AS a, 'x' AS b")
    assert (status, body) == (200, b"1\tx\n")
    assert headers["X-ClickHouse-Timezone"] == "UTC"
    assert json.loads(headers["X-ClickHouse-Summary"])["read_rows"].isdigit()
    assert headers["X-ClickHouse-Query-Id"]
    _, headers, body = _get(store, "SELECT 1 AS a FORMAT JSON")
    assert headers["X-ClickHouse-Format"] == "JSON"
    assert json.loads(body)["data"] == [{"a": 1}]
    _, _, body = _get(store, "SELECT 1 AS a, 'x' AS b", default_format="CSV")
    assert body == b'1,"x"\n'
    _, _, body = _get(store, "SELECT 1 AS a", default_format="PrettyCompact")
    assert "┌─a─┐" in body.decode()
    _, _, body = _get(store, "SELECT {n:UInt32} * 2, {s:String}", param_n="21", param_s="a&b")
    assert body == b"42\ta&b\n"
    _, _, body = _get(store, "SELECT getSetting('max_threads')", max_threads="2")
    assert body == b"2\n"
    # POST with the SQL in the body, gzip-compressed, as curl --data-binary would send it.
    request = urllib.request.Request(
        f"http://127.0.0.1:{store.store_port}/?default_format=TSV",
        data=zlib.compress(b"SELECT 40 + 2"),
        headers={"Content-Encoding": "deflate", "X-ClickHouse-Key": password(store)},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.read() == b"42\n"


# -- (6) start/stop are idempotent; data survives a graceful stop --------------------------
def test_start_and_stop_are_idempotent(tmp_path: Path) -> None:
    settings = make_store_settings(tmp_path)
    assert store_status(settings)["running"] is False
    pid = start_store(settings)
    try:
        assert pid is not None
        assert start_store(settings) == pid
        status = store_status(settings)
        assert status["running"] and status["answering"] and status["pid"] == pid
        assert status["data_dir"] == str((tmp_path / "data" / "clickhouse").resolve())
        client = get_client(settings)
        client.command("CREATE TABLE kept (a UInt8) ENGINE = MergeTree ORDER BY a")
        client.insert("kept", [[1], [2]], column_names=["a"])
        client.close()
    finally:
        assert stop_store(settings) is True
    assert stop_store(settings) is False
    assert store_status(settings)["running"] is False
    with pytest.raises(ServiceUnavailableError, match="envirostream infra up"):
        get_client(settings)
    start_store(settings)
    try:
        assert get_client(settings).query("SELECT sum(a) FROM kept").result_rows == [(3,)]
    finally:
        stop_store(settings)


def test_nothing_starts_for_an_external_server(tmp_path: Path) -> None:
    settings = make_store_settings(tmp_path, clickhouse_url="https://u:secret@ch.example:8443")
    assert start_store(settings) is None
    assert stop_store(settings) is False
    status = store_status(settings)
    assert status["running"] is False and "secret" not in str(status)


# -- (7) a taken port is refused with the setting to change --------------------------------
def test_taken_port_gives_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        settings = make_store_settings(tmp_path, store_port=port)
        with pytest.raises(ConfigurationError) as err:
            start_store(settings)
    assert err.value.setting == "ENVIROSTREAM_STORE_PORT"
    assert f"127.0.0.1:{port} is already in use" in str(err.value)
    assert store_status(settings)["running"] is False
    assert not (tmp_path / "data" / "clickhouse").exists()
