"""The embedded ClickHouse store: one process owns a chdb data directory and serves
ClickHouse's HTTP interface on loopback (the subset clickhouse-connect, curl and dashboards use).

chdb allows one process per data directory; this process is that one, so the worker(s),
``envirostream query`` and any ClickHouse client share the data while the pipeline runs.
Switching to a real ClickHouse server is only a change of ``ENVIROSTREAM_CLICKHOUSE_URL``.

Run: ``python -m sinks.store --data-dir DIR --port 18123``.

What is served: ``GET/POST /`` with the SQL in ``query=`` and/or the body, ``database=``,
``default_format=``, ``session_id=`` (one chdb connection per session, so ``USE`` and ``SET``
stay in it), ``param_<name>=`` for ``{name:Type}`` placeholders, other URL parameters as
settings; INSERTs with inline data in any input format (``INSERT ... FORMAT Native`` + data,
streamed into chdb), request bodies compressed with lz4/zstd/gzip/deflate (every frame);
``/ping``. Errors answer with the ClickHouse text, its HTTP status and the
``X-ClickHouse-Exception-Code`` header. Not served: response compression, progress headers,
external tables (multipart), TLS, users and passwords (loopback only).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb

from sinks._http_body import decompress_body, error_code, split_insert, status_for_code

__all__ = ["StoreServer", "main"]

log = logging.getLogger("envirostream.store")

# URL parameters that belong to the HTTP protocol, not to ClickHouse settings.
_HTTP_PARAMS = {
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
}
_SETTING_NAME = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
SESSION_IDLE_SECONDS = 300.0


class _Session:
    """A chdb connection kept for one ``session_id`` (state such as USE/SET lives in it)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.used = time.monotonic()


class StoreServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that owns the chdb data directory."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        # The primary connection holds the directory for the life of the process.
        self.primary = chdb.connect(str(data_dir))
        self.sessions: dict[str, _Session] = {}
        self.sessions_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # Nagle's algorithm delays small responses by ~40 ms per call; clients pay it twice.
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().server_bind()

    @contextmanager
    def connection(self, session_id: str | None) -> Iterator[Any]:
        """A connection for one request: the session's own, or a fresh one (no leaks)."""
        if not session_id:
            conn = chdb.connect(str(self.data_dir))
            try:
                yield conn
            finally:
                conn.close()
            return
        with self.sessions_lock:
            self._expire_sessions()
            session = self.sessions.get(session_id)
            if session is None:
                session = self.sessions[session_id] = _Session(chdb.connect(str(self.data_dir)))
        with session.lock:
            session.used = time.monotonic()
            yield session.conn

    def _expire_sessions(self) -> None:
        now = time.monotonic()
        for sid, session in list(self.sessions.items()):
            if now - session.used > SESSION_IDLE_SECONDS and not session.lock.locked():
                session.conn.close()
                del self.sessions[sid]

    def close_all(self) -> None:
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
        log.debug("%s " + format, self.address_string(), *args)

    # -- HTTP verbs ---------------------------------------------------------------------
    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self._read_body())

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size_line = self.rfile.readline()
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    # -- the request ----------------------------------------------------------------------
    def _handle(self, body: bytes) -> None:
        url = urlsplit(self.path)
        if url.path.rstrip("/") in ("/ping", "") and not url.query and not body:
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        if url.path.rstrip("/") not in ("", "/query"):
            self._reply(404, b"There is no handle " + url.path.encode() + b"\n", {})
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        try:
            body = decompress_body(body, self.headers.get("Content-Encoding"))
            result, fmt, summary = self._execute(params, body)
        except Exception as exc:
            self._error(exc, query_id)
            return
        headers = {
            "Content-Type": "text/plain; charset=UTF-8"
            if fmt.startswith(("TabSeparated", "TSV", "CSV", "Pretty"))
            else "application/octet-stream",
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Summary": json.dumps(summary),
        }
        self._reply(200, result, headers)

    def _execute(self, params: dict[str, str], body: bytes) -> tuple[bytes, str, dict[str, str]]:
        sql_param = params.get("query", "")
        payload = (sql_param.encode() + (b"\n" + body if body else b"")) if sql_param else body
        if not payload.strip():
            msg = "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)"
            raise _StoreError(msg)
        fmt = params.get("default_format") or "TabSeparated"
        query_params = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v
            for k, v in params.items()
            if k not in _HTTP_PARAMS and not k.startswith("param_") and set(k) <= _SETTING_NAME
        }
        with self.server.connection(params.get("session_id")) as conn:
            database = params.get("database")
            if database:
                conn.query(f"USE `{database.replace('`', '')}`")
            for key, value in settings.items():
                conn.query(f"SET {key} = {_literal(value)}")
            insert = split_insert(payload)
            if insert is not None:
                stmt, in_fmt, data = insert
                with conn.send_insert(stmt, in_fmt) as inserter:
                    if len(data):
                        inserter.append(bytes(data))
                    res = inserter.finish()
                written = str(getattr(res, "rows_written", 0))
                return b"", fmt, {"written_rows": written, "read_rows": "0"}
            res = conn.query(payload.decode("utf-8"), fmt, params=query_params or None)
            data = res.bytes() if hasattr(res, "bytes") else bytes(res)
            summary = {
                "read_rows": str(_attr(res, "rows_read")),
                "read_bytes": str(_attr(res, "bytes_read")),
                "written_rows": "0",
            }
            return data, fmt, summary

    # -- replies ----------------------------------------------------------------------------
    def _error(self, exc: Exception, query_id: str) -> None:
        text = str(exc).strip()
        if not text.startswith("Code:"):
            text = f"Code: 1000. DB::Exception: {type(exc).__name__}: {text}"
        code = error_code(text)
        self._reply(
            status_for_code(code),
            (text + "\n").encode(),
            {
                "Content-Type": "text/plain; charset=UTF-8",
                "X-ClickHouse-Exception-Code": str(code),
                "X-ClickHouse-Query-Id": query_id,
            },
        )

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("X-ClickHouse-Server-Display-Name", "envirostream-store")
        self.send_header("X-ClickHouse-Timezone", "UTC")
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Keep-Alive", "timeout=30")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _StoreError(Exception):
    pass


def _attr(res: Any, name: str) -> int:
    value = getattr(res, name, 0)
    return int(value() if callable(value) else value)


def _literal(value: str) -> str:
    if value.lstrip("-").replace(".", "", 1).isdigit():
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sinks.store", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18123)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s store %(levelname)s %(message)s")
    server = StoreServer((args.host, args.port), args.data_dir)

    def _stop(signum: int, _frame: Any) -> None:
        log.info("signal %s: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("serving ClickHouse HTTP on %s:%s, data %s", args.host, args.port, args.data_dir)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        server.close_all()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
