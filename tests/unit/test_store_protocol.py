"""The pure rules of the store's HTTP interface: bodies, URL parameters, error mapping."""

from __future__ import annotations

import gzip
import os
import zlib

import lz4.frame
import pytest
import zstandard

from sinks._store_http import (
    decompress_body,
    error_code,
    error_text,
    parse_params,
    result_format,
    setting_literal,
    split_insert,
    status_for_code,
)

BLOCKS = [os.urandom(1000) + bytes(50_000) + b"block %d" % i for i in range(5)]
PLAIN = b"".join(BLOCKS)


def test_lz4_body_with_several_frames_is_decompressed_whole() -> None:
    body = b"".join(lz4.frame.compress(block) for block in BLOCKS)
    # The trap this guards against: the one-shot API silently stops after frame one.
    assert lz4.frame.decompress(body) == BLOCKS[0]
    assert decompress_body(body, "lz4") == PLAIN


def test_zstd_body_with_several_frames_is_decompressed_whole() -> None:
    cctx = zstandard.ZstdCompressor()
    body = b"".join(cctx.compress(block) for block in BLOCKS)
    assert decompress_body(body, "zstd") == PLAIN


def test_gzip_body_with_several_members_is_decompressed_whole() -> None:
    body = b"".join(gzip.compress(block) for block in BLOCKS)
    assert decompress_body(body, "gzip") == PLAIN
    assert decompress_body(zlib.compress(PLAIN), "deflate") == PLAIN


def test_identity_and_empty_bodies_pass_through() -> None:
    assert decompress_body(PLAIN, None) == PLAIN
    assert decompress_body(PLAIN, "identity") == PLAIN
    assert decompress_body(b"", "lz4") == b""


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("lz4", lz4.frame.compress),
        ("zstd", zstandard.ZstdCompressor().compress),
        ("gzip", gzip.compress),
    ],
)
def test_truncated_last_frame_is_an_error_not_a_short_insert(
    encoding: str, compress: object
) -> None:
    assert callable(compress)
    body = compress(BLOCKS[0]) + compress(BLOCKS[1])[:-10]
    with pytest.raises(ValueError, match=r"Code: 432.*Truncated"):
        decompress_body(body, encoding)


def test_unknown_encoding_names_the_supported_ones() -> None:
    with pytest.raises(ValueError, match="lz4, zstd, gzip, deflate"):
        decompress_body(b"x", "br")


def test_params_are_sorted_into_protocol_settings_and_placeholders() -> None:
    p = parse_params(
        "query=SELECT+%7Bx%3AUInt8%7D&database=envirostream&default_format=JSON"
        "&session_id=abc&session_timeout=120&query_id=q1&param_x=7&param_name=a%26b"
        "&max_threads=2&date_time_input_format=best_effort&wait_end_of_query=1"
        "&send_progress_in_http_headers=1&http_headers_progress_interval_ms=120000"
        "&cancel_http_readonly_queries_on_client_close=1&client_protocol_version=54405"
        "&decompress=1"
    )
    assert p.query == "SELECT {x:UInt8}"
    assert p.database == "envirostream"
    assert p.default_format == "JSON"
    assert (p.session_id, p.session_timeout, p.query_id) == ("abc", 120.0, "q1")
    assert p.query_params == {"x": "7", "name": "a&b"}
    assert p.settings == {"max_threads": "2", "date_time_input_format": "best_effort"}
    assert p.decompress


def test_params_defaults() -> None:
    p = parse_params("")
    assert (p.query, p.database, p.session_id, p.default_format) == ("", None, None, "TabSeparated")
    assert p.settings == {} and p.query_params == {}


def test_a_parameter_that_is_no_setting_name_is_refused() -> None:
    with pytest.raises(ValueError, match="Code: 115"):
        parse_params("max_threads%3D1%3BDROP=1")


@pytest.mark.parametrize("value", ["0", "-5", "7200", "soon"])
def test_session_timeout_must_be_seconds_in_range(value: str) -> None:
    with pytest.raises(ValueError, match="ession timeout"):
        parse_params(f"session_id=a&session_timeout={value}")


def test_setting_literals_are_quoted_unless_numeric() -> None:
    assert setting_literal("10") == "10"
    assert setting_literal("0.25") == "0.25"
    assert setting_literal("best_effort") == "'best_effort'"
    assert setting_literal("1; DROP TABLE x") == "'1; DROP TABLE x'"
    assert setting_literal("a'b\\") == "'a\\'b\\\\'"


def test_insert_with_inline_data_is_split_from_its_statement() -> None:
    body = b"INSERT INTO envirostream.readings (ts, value) FORMAT Native\n\x02\x00binary"
    split = split_insert(body)
    assert split is not None
    stmt, fmt, data = split
    assert stmt == "INSERT INTO envirostream.readings (ts, value)"
    assert fmt == "Native"
    assert bytes(data) == b"\x02\x00binary"
    split = split_insert(b'insert into t format JSONEachRow {"a": 1}')
    assert split is not None
    assert split[1] == "JSONEachRow"
    assert bytes(split[2]) == b'{"a": 1}'


def test_statements_without_inline_data_are_not_split() -> None:
    assert split_insert(b"INSERT INTO t SELECT * FROM u") is None
    assert split_insert(b"SELECT 1 FORMAT Native") is None
    assert split_insert(b"CREATE TABLE t (a UInt8) ENGINE = Memory") is None


def test_result_format_prefers_the_format_clause() -> None:
    assert result_format("SELECT 1 FORMAT PrettyCompact", "Native") == "PrettyCompact"
    assert result_format("SELECT 1 FORMAT CSV;\n", "Native") == "CSV"
    assert result_format("SELECT 1", "Native") == "Native"


def test_errors_keep_clickhouse_text_and_code() -> None:
    wrapped = RuntimeError("Streaming insert finish failed: Code: 27. DB::Exception: x")
    assert error_text(wrapped) == "Code: 27. DB::Exception: x"
    assert error_code(error_text(wrapped)) == 27
    text = error_text(OSError("disk full"))
    assert text.startswith("Code: 1001. DB::Exception: OSError: disk full")
    assert error_code(text) == 1001


@pytest.mark.parametrize(
    ("code", "status"),
    [(60, 404), (81, 404), (62, 400), (27, 400), (516, 401), (446, 403), (164, 403), (241, 500)],
)
def test_http_status_follows_clickhouse(code: int, status: int) -> None:
    assert status_for_code(code) == status
