"""What the embedded store lets a request do: who may ask, from where, and which SQL.

Pure functions (no chdb, no sockets), unit-tested in tests/unit/test_store_guard.py:

- :func:`credentials`: the user and password of a request, from HTTP basic auth, the
  ``X-ClickHouse-User`` / ``X-ClickHouse-Key`` headers or the ``user`` / ``password`` URL
  parameters, as ClickHouse accepts them;
- :func:`foreign_origin`: a browser's ``Origin`` that is not loopback (a web page must not
  drive the store);
- :func:`check_sql`: one statement only; no table function, engine or clause that reaches
  outside the store (``file``, ``url``, ``s3``, ``remote``, ``executable``, ``INTO OUTFILE``,
  …); and, for a read-only request (a GET, or ``readonly=1``), only SELECT-type statements.

The SQL check reads tokens as ClickHouse's lexer does (comments, string literals, quoted
identifiers, heredocs), so case, whitespace, comments and quoting cannot hide a name.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Iterator, Mapping
from typing import Protocol
from urllib.parse import urlsplit

__all__ = [
    "GuardError",
    "admit",
    "authentication_error",
    "check_sql",
    "credentials",
    "foreign_origin",
    "password_matches",
    "redact_params",
    "refuse_origin",
    "sql_words",
]

# Table functions and table engines that read or write outside the store's own tables
# (files, network, other databases, processes, the host Python process of chdb).
_OUTSIDE_NAMES = (
    "file",
    "fileCluster",
    "url",
    "urlCluster",
    "http",
    "s3",
    "s3Cluster",
    "gcs",
    "oss",
    "cosn",
    "hdfs",
    "hdfsCluster",
    "azureBlobStorage",
    "azureBlobStorageCluster",
    "remote",
    "remoteSecure",
    "cluster",
    "clusterAllReplicas",
    "mysql",
    "postgresql",
    "sqlite",
    "mongodb",
    "mongo",
    "redis",
    "odbc",
    "jdbc",
    "executable",
    "executablePool",
    "input",
    "python",
    "deltaLake",
    "deltaLakeCluster",
    "hudi",
    "hudiCluster",
    "iceberg",
    "icebergS3",
    "icebergAzure",
    "icebergHDFS",
    "icebergLocal",
    "icebergCluster",
    "paimon",
    "arrowFlight",
    "ytsaurus",
    "kafka",
    "rabbitmq",
    "nats",
    "distributed",
)
OUTSIDE = frozenset(name.lower() for name in _OUTSIDE_NAMES)
# Keywords that make the server read or write a file of its host.
OUTSIDE_KEYWORDS = frozenset({"infile", "outfile"})
_SUSPECT = (*sorted(OUTSIDE | OUTSIDE_KEYWORDS), "identifier", ";", "\\")
# First words of the statements a read-only request may run (ClickHouse's readonly=1).
READ_ONLY = frozenset({"select", "with", "show", "describe", "desc", "exists", "explain"})
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


class Headers(Protocol):
    """Request headers looked up by name (``http.server``'s message, or a dict)."""

    def get(self, name: str, /) -> str | None: ...


class GuardError(ValueError):
    """A refused request: ``str()`` is ClickHouse's error text, ``status`` the HTTP status."""

    def __init__(self, code: int, message: str, name: str, status: int) -> None:
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")
        self.code = code
        self.status = status


def authentication_error(user: str) -> GuardError:
    """ClickHouse's answer to a wrong or missing password (code 516, HTTP 401)."""
    msg = (
        f"{user}: Authentication failed: password is incorrect, or there is no user with such name"
    )
    return GuardError(516, msg, "AUTHENTICATION_FAILED", 401)


def credentials(headers: Headers, params: Mapping[str, str]) -> tuple[str, str]:
    """``(user, password)`` of a request; the user is ``default`` when none is given.

    >>> credentials({"Authorization": "Basic " + base64.b64encode(b"u:p:w").decode()}, {})
    ('u', 'p:w')
    >>> credentials({"X-ClickHouse-User": "u", "X-ClickHouse-Key": "k"}, {})
    ('u', 'k')
    >>> credentials({}, {"password": "q"})
    ('default', 'q')
    """
    auth = headers.get("Authorization") or ""
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            user = "default"
            raise authentication_error(user) from None
        user, _, password = decoded.partition(":")
        return user or "default", password
    if headers.get("X-ClickHouse-User") or headers.get("X-ClickHouse-Key"):
        return headers.get("X-ClickHouse-User") or "default", headers.get("X-ClickHouse-Key") or ""
    return params.get("user") or "default", params.get("password") or ""


def password_matches(given: tuple[str, str], expected: tuple[str, str]) -> bool:
    """Constant-time comparison of ``(user, password)`` pairs."""
    user_ok = hmac.compare_digest(given[0].encode(), expected[0].encode())
    password_ok = hmac.compare_digest(given[1].encode(), expected[1].encode())
    return user_ok and password_ok


_PASSWORD_PARAM = re.compile(r"(?i)((?:^|[?&\s])password=)[^&\s]*")


def redact_params(value: object) -> object:
    """A log argument with any ``password=`` URL parameter masked (other values unchanged).

    >>> redact_params('"GET /?query=SELECT+1&password=s3cr3t&x=1 HTTP/1.1"')
    '"GET /?query=SELECT+1&password=***&x=1 HTTP/1.1"'
    >>> redact_params(200)
    200
    """
    return _PASSWORD_PARAM.sub(r"\1***", value) if isinstance(value, str) else value


def foreign_origin(origin: str | None) -> bool:
    """True for an ``Origin`` header naming anything but a loopback host (``null`` too).

    >>> foreign_origin(None), foreign_origin("http://127.0.0.1:3000"), foreign_origin("http://[::1]")
    (False, False, False)
    >>> foreign_origin("http://evil.example"), foreign_origin("null")
    (True, True)
    >>> foreign_origin("http://localhost.evil.example")
    True
    """
    if origin is None:
        return False
    try:
        host = urlsplit(origin.strip()).hostname
    except ValueError:
        return True
    return host not in _LOOPBACK


_HEREDOC = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_NUMBER = re.compile(r"[0-9][0-9A-Za-z_.]*")


def _syntax(what: str) -> GuardError:
    return GuardError(62, f"Syntax error: {what}", "SYNTAX_ERROR", 400)


def _quoted(sql: str, start: int) -> int:
    """The end of the quoted token opened at ``start`` (backslash escapes, doubled quotes)."""
    quote = sql[start]
    i = start + 1
    while i < len(sql):
        ch = sql[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            if sql.startswith(quote, i + 1):
                i += 2
                continue
            return i + 1
        i += 1
    msg = "unterminated quoted literal or identifier"
    raise _syntax(msg)


def _block_comment(sql: str, start: int) -> int:
    """The end of the (possibly nested) ``/* */`` comment opened at ``start``."""
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    msg = "unterminated comment"
    raise _syntax(msg)


def sql_words(sql: str) -> Iterator[tuple[str, str]]:
    """``(kind, text)`` tokens of ``sql`` without comments and whitespace.

    Kinds: ``word`` (identifiers and keywords, quoted ones unquoted; lower case),
    ``literal`` (strings, numbers, heredocs; text not kept) and ``punct`` (one character).

    >>> list(sql_words("SeLeCt `FiLe` /* x */ ( 'a''b' ) -- c"))
    [('word', 'select'), ('word', 'file'), ('punct', '('), ('literal', ''), ('punct', ')')]
    """
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch.isspace():
            i += 1
        elif sql.startswith(("--", "# ", "#!"), i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            i = _block_comment(sql, i)
        elif ch == "'":
            i = _quoted(sql, i)
            yield "literal", ""
        elif ch in '`"':
            end = _quoted(sql, i)
            body = sql[i + 1 : end - 1].replace(ch * 2, ch)
            yield "word", re.sub(r"\\(.)", r"\1", body).lower()
            i = end
        elif ch == "$" and (heredoc := _HEREDOC.match(sql, i)):
            end = sql.find(heredoc.group(0), heredoc.end())
            if end < 0:
                msg = "unterminated heredoc"
                raise _syntax(msg)
            i = end + len(heredoc.group(0))
            yield "literal", ""
        elif match := _WORD.match(sql, i):
            yield "word", match.group(0).lower()
            i = match.end()
        elif match := _NUMBER.match(sql, i):
            yield "literal", ""
            i = match.end()
        else:
            yield "punct", ch
            i += 1


def check_sql(sql: str, *, read_only: bool, params: Mapping[str, str] | None = None) -> None:
    """Raise :class:`GuardError` unless the store may run ``sql``.

    ``params`` are the ``param_<name>`` values: one substituted as an ``Identifier`` must
    not name a table function either.

    >>> check_sql("SELECT * FROM system.tables", read_only=True)
    >>> def refusal(sql, read_only=False):
    ...     try:
    ...         check_sql(sql, read_only=read_only)
    ...     except GuardError as exc:
    ...         return exc.code, exc.status, str(exc)[:60]
    >>> refusal("SELECT * FROM FiLe /**/ ('/etc/hostname')")
    (446, 403, 'Code: 446. DB::Exception: table function file is not allowed')
    >>> refusal("DROP TABLE t", read_only=True)
    (164, 403, 'Code: 164. DB::Exception: default: Cannot execute query in r')
    """
    # Reading tokens costs ~1 µs per character in Python: text that holds none of the names,
    # no ';', no backslash (an escape inside a quoted name) and no Identifier parameter
    # cannot call one, so a large VALUES insert is not read token by token.
    lowered = sql.lower()
    tokens = list(sql_words(sql)) if any(s in lowered for s in _SUSPECT) else []
    for index, (kind, text) in enumerate(tokens):
        if kind == "punct" and text == ";" and any(t[1] != ";" for t in tokens[index:]):
            msg = "Multi-statements are not allowed: send one statement per request"
            raise GuardError(62, msg, "SYNTAX_ERROR", 400)
        if kind != "word":
            continue
        if text in OUTSIDE_KEYWORDS:
            msg = f"{text.upper()} is not allowed in the embedded store (it reaches its host)"
            raise GuardError(446, msg, "FUNCTION_NOT_ALLOWED", 403)
        following = tokens[index + 1] if index + 1 < len(tokens) else ("", "")
        if text in OUTSIDE and following == ("punct", "("):
            msg = f"table function {text} is not allowed in the embedded store"
            raise GuardError(446, msg, "FUNCTION_NOT_ALLOWED", 403)
    if params and any(
        tokens[i : i + 2] == [("punct", ":"), ("word", "identifier")] for i in range(len(tokens))
    ):
        for value in params.values():
            for kind, text in sql_words(value):
                if kind == "word" and text in OUTSIDE | OUTSIDE_KEYWORDS:
                    msg = f"table function {text} is not allowed in the embedded store"
                    raise GuardError(446, msg, "FUNCTION_NOT_ALLOWED", 403)
    if read_only:
        words = sql_words(sql)
        first = next((text for kind, text in words if kind != "punct" or text != "("), "")
        if first not in READ_ONLY:
            msg = (
                "default: Cannot execute query in readonly mode: a GET (or readonly=1) request "
                "runs only SELECT, SHOW, DESCRIBE, EXISTS and EXPLAIN; send other statements "
                "with POST"
            )
            raise GuardError(164, msg, "READONLY", 403)


def admit(
    headers: Headers,
    params: Mapping[str, str],
    expected: tuple[str, str] | None,
) -> None:
    """Raise :class:`GuardError` unless ``expected`` (user, password) is None or given.

    >>> admit({}, {"user": "default", "password": "pw"}, ("default", "pw"))
    >>> admit({}, {}, None)
    >>> try:
    ...     admit({}, {"password": "nope"}, ("default", "pw"))
    ... except GuardError as exc:
    ...     exc.code, exc.status, "nope" in str(exc)
    (516, 401, False)
    """
    if expected is None:
        return
    given = credentials(headers, params)
    if not password_matches(given, expected):
        raise authentication_error(given[0])


def refuse_origin(origin: str | None) -> None:
    """Raise :class:`GuardError` (403) for a request a foreign web page made."""
    if foreign_origin(origin):
        msg = (
            "Requests from a web page of another origin are refused by the embedded store "
            "(only loopback origins may call it)"
        )
        raise GuardError(497, msg, "ACCESS_DENIED", 403)
