"""The embedded ClickHouse store: one process owns a chdb data directory and serves
ClickHouse's HTTP interface on loopback (the subset clickhouse-connect, curl and dashboards use).

chdb allows one process per data directory; this process is that one, so the worker(s),
``envirostream query`` and any ClickHouse client share the data while the pipeline runs.
Switching to a real ClickHouse server is only a change of ``ENVIROSTREAM_CLICKHOUSE_URL``.

Run: ``python -m sinks.store --data-dir DIR [--host 127.0.0.1] [--port 18123]
[--password-file FILE]``. With a password file every query must give user ``default`` and
that password (basic auth, ``X-ClickHouse-User``/``-Key`` or ``user=``/``password=``); a GET
runs only SELECT-type statements; table functions that reach outside the store and foreign
``Origin`` headers are refused (``sinks._store_guard``, docs/security.md).

Served:

- ``GET/POST /`` (and ``/query``) with the SQL in ``query=`` and/or the body, ``database=``,
  ``default_format=``, ``query_id=``, ``param_<name>=`` for ``{name:Type}`` placeholders and
  every other URL parameter as a setting of that one query;
- ``session_id=`` (+ ``session_timeout=``): one chdb connection per session, so ``USE`` and
  ``SET`` stay in it and never reach another client; without it every request gets a fresh
  connection;
- INSERTs with inline data in any input format (``INSERT ... FORMAT Native`` + data), handed
  to chdb as a spooled file so that a block the engine rejects answers with its error;
  request bodies compressed with lz4 / zstd / gzip / deflate (``Content-Encoding`` or
  ``decompress=1``; every frame, not only the first);
- ``/ping`` and ``GET /`` answer ``Ok.``;
- errors: ClickHouse's text (``Code: 60. DB::Exception: ...``), its HTTP status and the
  ``X-ClickHouse-Exception-Code`` header, so clickhouse-connect raises ``DatabaseError`` with
  the code.

Not served: response compression (answers are sent uncompressed, which every client accepts),
progress headers, external tables (multipart bodies), TLS, more than one user, ``/play`` and
``/replicas_status``. Results are buffered before they are sent, so a query's result must fit
in memory.

An acknowledged insert (HTTP 200) has written its MergeTree part to the data directory, so a
killed store loses none (the operating system holds the written files; power loss would
additionally need fsync, which is not configured).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode, urlsplit

import chdb

from core.store_password import STORE_USER, read_store_password
from sinks._store_guard import GuardError, admit, check_sql, redact_params, refuse_origin
from sinks._store_http import (
    RequestParams,
    decompress_body,
    error_code,
    error_text,
    form_fields,
    insert_from_file,
    parse_params,
    result_format,
    split_insert,
    stat_float,
    stat_int,
    status_for_code,
)
from sinks._store_sessions import Session, apply_settings

__all__ = ["StoreServer", "main"]

log = logging.getLogger("envirostream.store")

SERVER_NAME = "envirostream-store"
_TEXT_FORMATS = ("TabSeparated", "TSV", "CSV", "Pretty", "Values", "Vertical", "Markdown")


class StoreServer(ThreadingHTTPServer):
    """A threaded HTTP server that owns the chdb data directory.

    Queries from different connections run in parallel inside chdb; requests of one
    session are serialised by the session's lock (as ClickHouse does).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], data_dir: Path, credentials: tuple[str, str] | None = None
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.credentials = credentials  # (user, password) every request must give; None: open
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.sessions: dict[str, Session] = {}
        self.sessions_lock = threading.Lock()
        self._busy = 0
        self._busy_cond = threading.Condition()
        self._closing = False
        super().__init__(address, _Handler)
        # Open the engine only once the port is ours: a taken port must not touch the data.
        # The primary connection holds the directory (and the engine) for the process's life.
        self.primary = chdb.connect(str(self.data_dir))
        # Insert bodies are handed to the engine as files (see _Handler._insert); a spool
        # left by a killed store holds nothing acknowledged, so it is emptied at start.
        self.spool_dir = self.data_dir / "insert-spool"
        shutil.rmtree(self.spool_dir, ignore_errors=True)
        self.spool_dir.mkdir()

    @contextmanager
    def spool(self, data: memoryview) -> Iterator[str]:
        """``data`` written to a file of its own for the length of the block."""
        path = self.spool_dir / f"{uuid.uuid4().hex}.bin"
        try:
            with path.open("wb") as out:
                out.write(data)
            yield str(path)
        finally:
            path.unlink(missing_ok=True)

    def server_bind(self) -> None:
        # Nagle's algorithm delays small answers by ~40 ms per request.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()

    def process_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().process_request(request, client_address)

    # -- requests in flight (so SIGTERM never cuts an insert in half) -------------------
    @contextmanager
    def request_slot(self) -> Iterator[bool]:
        """Count a running request; yields False when the server is shutting down."""
        with self._busy_cond:
            if self._closing:
                yield False
                return
            self._busy += 1
        try:
            yield True
        finally:
            with self._busy_cond:
                self._busy -= 1
                self._busy_cond.notify_all()

    def drain(self, timeout: float) -> bool:
        """Refuse new requests and wait for running ones; True if all finished in time."""
        with self._busy_cond:
            self._closing = True
            return self._busy_cond.wait_for(lambda: self._busy == 0, timeout)

    # -- chdb connections -----------------------------------------------------------------
    @contextmanager
    def connection(self, params: RequestParams) -> Iterator[tuple[Any, Session | None]]:
        """A connection for one request: the session's own, or a fresh one (no leaks)."""
        if not params.session_id:
            conn = chdb.connect(str(self.data_dir))
            try:
                yield conn, None
            finally:
                conn.close()
            return
        with self.sessions_lock:
            self._expire_sessions()
            session = self.sessions.get(params.session_id)
            if session is None:
                session = Session(chdb.connect(str(self.data_dir)), params.session_timeout)
                self.sessions[params.session_id] = session
        with session.lock:
            session.timeout = params.session_timeout
            try:
                yield session.conn, session
            finally:
                session.used = time.monotonic()

    def _expire_sessions(self) -> None:
        now = time.monotonic()
        for sid, session in list(self.sessions.items()):
            if now - session.used > session.timeout and session.lock.acquire(blocking=False):
                try:
                    session.conn.close()
                    del self.sessions[sid]
                finally:
                    session.lock.release()

    def close_all(self) -> None:
        """Close every chdb connection; the engine shuts down with the last one."""
        with self.sessions_lock:
            for session in self.sessions.values():
                session.conn.close()
            self.sessions.clear()
        self.primary.close()


class _Handler(BaseHTTPRequestHandler):
    server: StoreServer
    protocol_version = "HTTP/1.1"
    server_version = "EnviroStreamStore"

    def log_message(self, format: str, *args: Any) -> None:
        # The request line may carry ``password=``: it is masked before it is logged.
        log.debug("%s " + format, self.address_string(), *map(redact_params, args))

    # -- HTTP verbs ---------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle(b"")

    def do_HEAD(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        try:
            body = self._read_body()
        except (OSError, ValueError) as exc:
            msg = (
                f"Code: 33. DB::Exception: Cannot read the request body: {exc}. "
                "(CANNOT_READ_ALL_DATA)"
            )
            self.close_connection = True
            self._error(msg, str(uuid.uuid4()))
            return
        self._handle(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65536) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunk = self.rfile.read(size)
                if len(chunk) != size:
                    msg = "connection closed inside a chunk"
                    raise ValueError(msg)
                chunks.append(chunk)
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            msg = f"connection closed after {len(body)} of {length} bytes"
            raise ValueError(msg)
        return body

    # -- the request ----------------------------------------------------------------------
    def _handle(self, body: bytes) -> None:
        url = urlsplit(self.path)
        path = url.path.rstrip("/")
        try:
            refuse_origin(self.headers.get("Origin"))
        except GuardError as exc:
            self.close_connection = True
            self._error(str(exc), str(uuid.uuid4()))
            return
        if path == "/ping" or (path == "" and not url.query and not body):
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        query_id = str(uuid.uuid4())
        if path not in ("", "/query"):
            text = f"Code: 1001. DB::Exception: There is no handle {url.path}: use / or /ping."
            self._reply(404, text.encode() + b"\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        with self.server.request_slot() as accepted:
            if not accepted:
                self.close_connection = True
                self._error("Code: 210. DB::Exception: The store is shutting down.", query_id)
                return
            try:
                query_string = url.query
                fields = form_fields(self.headers.get("Content-Type", ""), body)
                if fields is not None:  # parameters too long for the URL come as a form
                    query_string = "&".join(filter(None, (query_string, urlencode(fields))))
                    body = b""
                params = parse_params(query_string)
                query_id = params.query_id or query_id
                admit(self.headers, params.credentials, self.server.credentials)
                encoding = self.headers.get("Content-Encoding")
                if encoding is None and params.decompress:
                    encoding = "lz4"
                body = decompress_body(body, encoding)
                result, fmt, summary = self._execute(params, body)
            except Exception as exc:
                self._error(error_text(exc), query_id)
                return
        content_type = "text/plain; charset=UTF-8"
        if fmt.startswith("JSON"):
            content_type = "application/json; charset=UTF-8"
        elif not fmt.startswith(_TEXT_FORMATS):
            content_type = "application/octet-stream"
        headers = {
            "Content-Type": content_type,
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Summary": json.dumps(summary),
        }
        if params.session_id:
            headers["X-ClickHouse-Session-Id"] = params.session_id
        self._reply(200, result, headers)

    def _execute(self, params: RequestParams, body: bytes) -> tuple[bytes, str, dict[str, str]]:
        sql = params.query.encode()
        payload = (sql + b"\n" + body if body else sql) if sql else body
        if not payload.strip():
            msg = "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)"
            raise ValueError(msg)
        insert = split_insert(payload)
        # GET is read-only, as in ClickHouse; readonly=1 (or 2) asks for it on a POST too.
        read_only = self.command in ("GET", "HEAD") or params.settings.get("readonly", "0") != "0"
        if insert is None:
            check_sql(payload.decode("utf-8"), read_only=read_only, params=params.query_params)
        else:
            check_sql(insert[0], read_only=read_only, params=params.query_params)
            if insert[1].lower() == "values":  # Values data may hold expressions
                check_sql(bytes(insert[2]).decode("utf-8"), read_only=False)
        with self.server.connection(params) as (conn, session):
            if params.database:
                conn.query(f"USE `{params.database.replace('`', '``')}`")
            apply_settings(conn, session, params.settings)
            if insert is not None:
                return self._insert(conn, params, *insert)
            query = payload.decode("utf-8")
            fmt = result_format(query, params.default_format)
            res = conn.query(query, params.default_format, params=params.query_params or None)
            data = res.bytes() if hasattr(res, "bytes") else bytes(res)
            summary = {
                "read_rows": str(stat_int(res, "rows_read")),
                "read_bytes": str(stat_int(res, "bytes_read")),
                "written_rows": "0",
                "written_bytes": "0",
                "result_rows": str(stat_int(res, "rows_read")),
                "elapsed_ns": str(int(stat_float(res, "elapsed") * 1e9)),
            }
            return data, fmt, summary

    def _insert(
        self, conn: Any, params: RequestParams, stmt: str, in_fmt: str, data: memoryview
    ) -> tuple[bytes, str, dict[str, str]]:
        # chdb's streamed insert (send_insert) reports success and rows written even when
        # ClickHouse rejected the block (a CHECK constraint, TOO_MANY_PARTS): nothing was
        # stored, yet the client was told 200. A plain query reading the body from a spool
        # file raises the engine's error, so a rejected insert answers with its error code.
        started = time.monotonic()
        with self.server.spool(data) as path:
            res = conn.query(insert_from_file(stmt, path, in_fmt))
        summary = {
            "read_rows": "0",
            "read_bytes": "0",
            "written_rows": str(stat_int(res, "rows_written") or stat_int(res, "rows_read")),
            "written_bytes": str(stat_int(res, "bytes_written") or stat_int(res, "bytes_read")),
            "elapsed_ns": str(int((time.monotonic() - started) * 1e9)),
        }
        return b"", params.default_format, summary

    # -- replies ----------------------------------------------------------------------------
    def _error(self, text: str, query_id: str) -> None:
        code = error_code(text)
        log.debug("query %s failed: %s", query_id, text)
        self._reply(
            status_for_code(code),
            (text.rstrip() + "\n").encode(),
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(code),
                "X-ClickHouse-Query-Id": query_id,
            },
        )

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("X-ClickHouse-Server-Display-Name", SERVER_NAME)
        self.send_header("X-ClickHouse-Timezone", "UTC")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", "timeout=30")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def serve(
    data_dir: Path,
    host: str,
    port: int,
    drain_seconds: float = 30.0,
    credentials: tuple[str, str] | None = None,
) -> int:
    """Serve until SIGTERM/SIGINT; then finish running requests and close chdb cleanly.

    ``credentials`` (user, password) are required of every query; without them the store
    listens on loopback only.
    """
    if credentials is None and host not in ("127.0.0.1", "localhost", "::1"):
        log.error("refusing to listen on %s without a password: pass --password-file", host)
        return 2
    if credentials is None:
        log.warning("no --password-file: any local program may query and change the store")
    try:
        server = StoreServer((host, port), data_dir, credentials)
    except OSError as exc:
        log.error(
            "cannot listen on %s:%s (%s): choose another port (ENVIROSTREAM_STORE_PORT)",
            host,
            port,
            exc,
        )
        return 2

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("serving ClickHouse HTTP on http://%s:%s, data in %s", host, port, server.data_dir)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if not server.drain(drain_seconds):
            log.warning("requests still running after %.0fs; closing anyway", drain_seconds)
        server.close_all()
        log.info("stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sinks.store",
        description="Serve a chdb data directory over ClickHouse's HTTP interface.",
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="chdb data directory")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (loopback)")
    parser.add_argument("--port", type=int, default=18123, help="HTTP port")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    parser.add_argument("--user", default=STORE_USER, help="the user queries must name")
    parser.add_argument(
        "--password-file", type=Path, help="file whose first line is the password queries need"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s store %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    credentials = None
    if args.password_file is not None:
        password = read_store_password(args.password_file)
        if password is None:
            log.error("--password-file %s is missing or empty", args.password_file)
            return 2
        credentials = (args.user, password)
    return serve(args.data_dir, args.host, args.port, credentials=credentials)


if __name__ == "__main__":
    raise SystemExit(main())
