"""Pure parts of the store's HTTP interface: URL parameters, request bodies, error mapping.

Nothing here touches chdb or sockets, so every rule is unit-tested in milliseconds
(tests/unit/test_store_protocol.py).
"""

from __future__ import annotations

import email.parser
import email.policy
import re
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import lz4.frame
import zstandard

__all__ = [
    "HTTP_PARAMS",
    "RequestParams",
    "decompress_body",
    "error_code",
    "error_text",
    "form_fields",
    "insert_from_file",
    "parse_params",
    "result_format",
    "setting_literal",
    "split_insert",
    "stat_float",
    "stat_int",
    "status_for_code",
]

# URL parameters that belong to the HTTP protocol, not to ClickHouse settings.
HTTP_PARAMS = frozenset(
    {
        "query",
        "database",
        "default_format",
        "session_id",
        "session_timeout",
        "session_check",
        "query_id",
        "user",
        "password",
        "compress",
        "decompress",
        "enable_http_compression",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "wait_end_of_query",
        "buffer_size",
        "quota_key",
        "client_protocol_version",
        "role",
        "http_response_buffer_size",
        "http_wait_end_of_query",
        "cancel_http_readonly_queries_on_client_close",
    }
)
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_SESSION_TIMEOUT = 60.0
MAX_SESSION_TIMEOUT = 3600.0


@dataclass(frozen=True)
class RequestParams:
    """The URL parameters of one request, sorted into what each one is for."""

    query: str = ""
    database: str | None = None
    default_format: str = "TabSeparated"
    session_id: str | None = None
    session_timeout: float = DEFAULT_SESSION_TIMEOUT
    query_id: str | None = None
    decompress: bool = False
    # ``user`` / ``password`` of the URL; never in repr, so never in a log line.
    credentials: dict[str, str] = field(default_factory=dict, repr=False)
    settings: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)


def parse_params(query_string: str) -> RequestParams:
    """Sort a request's URL parameters into protocol fields, settings and ``param_*`` values.

    >>> p = parse_params("database=db&param_x=5&max_threads=2&wait_end_of_query=1&session_id=s")
    >>> p.database, p.query_params, p.settings, p.session_id
    ('db', {'x': '5'}, {'max_threads': '2'}, 's')
    """
    raw = dict(parse_qsl(query_string, keep_blank_values=True))
    settings: dict[str, str] = {}
    query_params: dict[str, str] = {}
    for key, value in raw.items():
        if key.startswith("param_"):
            query_params[key[len("param_") :]] = value
        elif key not in HTTP_PARAMS:
            if not _SETTING_NAME.match(key):
                msg = (
                    f"Code: 115. DB::Exception: Unknown setting {key!r}: "
                    "URL parameters must be ClickHouse setting names. (UNKNOWN_SETTING)"
                )
                raise ValueError(msg)
            settings[key] = value
    timeout = DEFAULT_SESSION_TIMEOUT
    if raw.get("session_timeout"):
        try:
            timeout = float(raw["session_timeout"])
        except ValueError:
            msg = (
                f"Code: 72. DB::Exception: Invalid session timeout: "
                f"{raw['session_timeout']!r}, expected seconds. (CANNOT_PARSE_NUMBER)"
            )
            raise ValueError(msg) from None
        if not 0 < timeout <= MAX_SESSION_TIMEOUT:
            msg = (
                f"Code: 69. DB::Exception: Session timeout {timeout:g} is out of range "
                f"(0, {MAX_SESSION_TIMEOUT:g}]. (ARGUMENT_OUT_OF_BOUND)"
            )
            raise ValueError(msg)
    return RequestParams(
        query=raw.get("query", ""),
        database=raw.get("database") or None,
        default_format=raw.get("default_format") or "TabSeparated",
        session_id=raw.get("session_id") or None,
        session_timeout=timeout,
        query_id=raw.get("query_id") or None,
        decompress=raw.get("decompress") == "1",
        credentials={k: raw[k] for k in ("user", "password") if k in raw},
        settings=settings,
        query_params=query_params,
    )


def setting_literal(value: str) -> str:
    """A URL setting value as an SQL literal for ``SET name = <literal>``.

    >>> setting_literal("4"), setting_literal("-0.5"), setting_literal("best_effort")
    ('4', '-0.5', "'best_effort'")
    >>> setting_literal("it's")
    "'it\\\\'s'"
    """
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def decompress_body(body: bytes, encoding: str | None) -> bytes:
    """Undo ``Content-Encoding``; every frame / member is decompressed, not just the first.

    clickhouse-connect writes one compressed frame per Native block; ``lz4.frame.decompress``
    would silently stop after the first one and lose the other blocks.

    >>> import lz4.frame
    >>> decompress_body(lz4.frame.compress(b"ab") + lz4.frame.compress(b"cd"), "lz4")
    b'abcd'
    """
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity") or not body:
        return body
    if enc == "lz4":
        return _lz4_frames(body)
    if enc == "zstd":
        return _zstd_frames(body)
    if enc in ("gzip", "x-gzip", "deflate"):
        return _zlib_members(body, 16 + zlib.MAX_WBITS if enc != "deflate" else zlib.MAX_WBITS)
    msg = (
        f"Code: 1001. DB::Exception: Unsupported Content-Encoding {encoding!r}: "
        "send the body as lz4, zstd, gzip, deflate or uncompressed. (NOT_IMPLEMENTED)"
    )
    raise ValueError(msg)


def _truncated(what: str) -> str:
    return (
        f"Code: 432. DB::Exception: Truncated {what} in the request body: "
        "send complete frames. (UNKNOWN_CODEC)"
    )


def _lz4_frames(body: bytes) -> bytes:
    out: list[bytes] = []
    rest = body
    while rest:
        dec = lz4.frame.LZ4FrameDecompressor()
        out.append(dec.decompress(rest))
        if not dec.eof:
            raise ValueError(_truncated("lz4 frame"))
        rest = dec.unused_data
    return b"".join(out)


def _zstd_frames(body: bytes) -> bytes:
    out: list[bytes] = []
    rest = body
    while rest:
        dec = zstandard.ZstdDecompressor().decompressobj()
        out.append(dec.decompress(rest))
        if not dec.eof:
            raise ValueError(_truncated("zstd frame"))
        rest = dec.unused_data
    return b"".join(out)


def _zlib_members(body: bytes, wbits: int) -> bytes:
    out: list[bytes] = []
    rest = body
    while rest:
        dec = zlib.decompressobj(wbits)
        out.append(dec.decompress(rest))
        out.append(dec.flush())
        if not dec.eof:
            raise ValueError(_truncated("gzip/deflate stream"))
        rest = dec.unused_data
    return b"".join(out)


# INSERT INTO <target> [(<cols>)] [SETTINGS ...] FORMAT <name> <newline or space> <data...>
_INSERT = re.compile(
    rb"^\s*(INSERT\s+INTO\s+.+?)\s+FORMAT\s+([A-Za-z0-9_]+)(?:[ \t]*\r?\n|[ \t]+|$)",
    re.IGNORECASE | re.DOTALL,
)


def split_insert(sql_and_data: bytes) -> tuple[str, str, memoryview] | None:
    """``(insert statement without FORMAT, format, data)`` for an INSERT with inline data.

    >>> stmt, fmt, data = split_insert(b"INSERT INTO t (a) FORMAT CSV\\n1\\n2\\n")
    >>> stmt, fmt, bytes(data)
    ('INSERT INTO t (a)', 'CSV', b'1\\n2\\n')
    >>> split_insert(b"SELECT 1") is None
    True
    """
    match = _INSERT.match(sql_and_data[:65536])
    if match is None:
        return None
    stmt = match.group(1).decode("utf-8")
    return stmt, match.group(2).decode("ascii"), memoryview(sql_and_data)[match.end() :]


def form_fields(content_type: str, body: bytes) -> list[tuple[str, str]] | None:
    r"""The text fields of a ``multipart/form-data`` body (None for any other body).

    clickhouse-connect sends query parameters this way once they pass 4 kB of URL; the
    fields are the same ``query`` / ``param_<name>`` / setting names as in the URL.

    >>> body = (b'--b\r\nContent-Disposition: form-data; name="param_x"\r\n\r\n[1,2]\r\n'
    ...         b'--b\r\nContent-Disposition: form-data; name="query"\r\n\r\nSELECT 1\r\n--b--\r\n')
    >>> form_fields("multipart/form-data; boundary=b", body)
    [('param_x', '[1,2]'), ('query', 'SELECT 1')]
    >>> form_fields("text/plain", b"SELECT 1") is None
    True
    """
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    fields = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            msg = "Code: 1001. DB::Exception: external tables (file parts) are not served."
            raise ValueError(msg)
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.append((name, payload.decode("utf-8")))
    return fields


_SETTINGS_CLAUSE = re.compile(r"\sSETTINGS\s", re.IGNORECASE)


def insert_from_file(stmt: str, path: str, fmt: str) -> str:
    """The INSERT ``stmt`` reading its data from the file ``path`` in format ``fmt``.

    ``FROM INFILE`` goes before a ``SETTINGS`` clause, as ClickHouse's grammar wants.

    >>> insert_from_file("INSERT INTO t (a)", "/s/1.bin", "Native")
    "INSERT INTO t (a) FROM INFILE '/s/1.bin' FORMAT Native"
    >>> insert_from_file("INSERT INTO t SETTINGS async_insert=0", "/s/2.bin", "CSV")
    "INSERT INTO t FROM INFILE '/s/2.bin' SETTINGS async_insert=0 FORMAT CSV"
    """
    source = f" FROM INFILE '{path}'"
    match = _SETTINGS_CLAUSE.search(stmt)
    if match is None:
        return f"{stmt}{source} FORMAT {fmt}"
    return f"{stmt[: match.start()]}{source}{stmt[match.start() :]} FORMAT {fmt}"


_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)


def result_format(sql: str, default_format: str) -> str:
    """The output format of a query: its trailing ``FORMAT x`` clause, else ``default_format``.

    >>> result_format("SELECT 1 FORMAT JSON", "TabSeparated")
    'JSON'
    >>> result_format("SELECT 'FORMAT' AS f", "CSV")
    'CSV'
    """
    match = _TRAILING_FORMAT.search(sql[-200:])
    return match.group(1) if match else default_format


_CODE = re.compile(r"Code: (\d+)")


def error_text(exc: BaseException) -> str:
    """ClickHouse's error text for ``exc``: from its ``Code: N.`` on, wrappers removed.

    >>> error_text(RuntimeError("Streaming insert failed: Code: 117. DB::Exception: bad row"))
    'Code: 117. DB::Exception: bad row'
    >>> error_text(KeyError("x"))
    "Code: 1001. DB::Exception: KeyError: 'x'. (STD_EXCEPTION)"
    """
    text = str(exc).strip()
    match = _CODE.search(text)
    if match:
        return text[match.start() :]
    return f"Code: 1001. DB::Exception: {type(exc).__name__}: {text}. (STD_EXCEPTION)"


def error_code(message: str) -> int:
    """The ClickHouse error code of an error text (1001, STD_EXCEPTION, if none)."""
    match = _CODE.search(message)
    return int(match.group(1)) if match else 1001


def status_for_code(code: int) -> int:
    """HTTP status ClickHouse answers for an exception code (500 unless a client error)."""
    if code in (16, 46, 47, 50, 60, 73, 81, 115):  # unknown column/function/table/db/setting...
        return 404
    if code in (6, 26, 27, 36, 38, 53, 62, 69, 70, 72, 117, 130):  # unparsable or bad input
        return 400
    if code == 516:  # AUTHENTICATION_FAILED
        return 401
    if code in (164, 192, 194, 195, 446, 497):  # readonly, function not allowed, access
        return 403
    return 500


def stat_int(res: Any, name: str) -> int:
    """A chdb result's statistic ``name`` (an attribute or a method; 0 if missing)."""
    value = getattr(res, name, 0)
    return int(value() if callable(value) else value)


def stat_float(res: Any, name: str) -> float:
    """Like :func:`stat_int`, as a float (``elapsed`` seconds)."""
    value = getattr(res, name, 0.0)
    return float(value() if callable(value) else value)
