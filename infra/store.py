"""Start, stop and inspect the embedded ClickHouse store (``python -m sinks.store``).

The store is a background process (pid and log under the data dir, see
:mod:`infra.processes`) that owns ``<ENVIROSTREAM_DATA_DIR>/clickhouse`` and serves
ClickHouse's HTTP interface on ``127.0.0.1:<ENVIROSTREAM_STORE_PORT>``, requiring the password
of ``ENVIROSTREAM_STORE_PASSWORD_FILE`` (generated on first start). Nothing is started when
``ENVIROSTREAM_CLICKHOUSE_URL`` names a ClickHouse server.
"""

from __future__ import annotations

import logging
import sys
import urllib.request
from pathlib import Path
from typing import Any

from core.errors import ConfigurationError, ServiceUnavailableError
from core.settings import Settings
from core.store_password import STORE_USER, ensure_store_password
from infra.processes import (
    ServiceProcess,
    port_open,
    read_pid,
    start_service,
    stop_service,
    wait_until,
)

__all__ = ["start_store", "stop_store", "store_data_dir", "store_service", "store_status"]

log = logging.getLogger("envirostream.infra.store")

_SERVER_NAME = "envirostream-store"  # X-ClickHouse-Server-Display-Name of sinks.store


def store_service(settings: Settings) -> ServiceProcess:
    """Where the store keeps its pid file and log."""
    return ServiceProcess("store", settings.data_dir)


def store_data_dir(settings: Settings) -> Path:
    """The chdb data directory the store owns."""
    return (settings.data_dir / "clickhouse").resolve()


def _store_answers(port: int) -> bool:
    """True when our store (not another ClickHouse) answers /ping on the port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as resp:
            return bool(
                resp.status == 200
                and resp.headers.get("X-ClickHouse-Server-Display-Name") == _SERVER_NAME
                and resp.read().startswith(b"Ok.")
            )
    except OSError:
        return False


def _is_store_process(pid: int, settings: Settings) -> bool:
    """True when ``pid`` is the store of this data dir (pid files outlive reboots)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid file
    return b"sinks.store" in argv and str(store_data_dir(settings)).encode() in argv


def _running_pid(settings: Settings) -> int | None:
    service = store_service(settings)
    pid = read_pid(service)
    if pid is not None and not _is_store_process(pid, settings):
        service.pid_file.unlink(missing_ok=True)
        return None
    return pid


def start_store(settings: Settings, timeout: float = 60.0) -> int | None:
    """Start the store unless it runs and return its pid (idempotent).

    Returns None, starting nothing, when ``ENVIROSTREAM_CLICKHOUSE_URL`` names a server.
    Raises :class:`ConfigurationError` when the port is taken by another program and
    :class:`ServiceUnavailableError` when the store exits or does not answer in ``timeout``.
    """
    if not settings.uses_local_store:
        log.info(
            "ENVIROSTREAM_CLICKHOUSE_URL is set (%s): the embedded store is not started",
            str(settings.store_url),
        )
        return None
    service = store_service(settings)
    port = settings.store_port

    def ready() -> bool:
        return _store_answers(port)

    pid = _running_pid(settings)
    if pid is not None:
        if wait_until(ready, timeout):
            return pid
        hint = f"pid {pid} runs but does not answer; see {service.log_file}"
        raise ServiceUnavailableError(
            service="ClickHouse store", address=str(settings.store_url), hint=hint
        )
    if port_open("127.0.0.1", port):
        msg = (
            f"127.0.0.1:{port} is already in use by another program, not the store of "
            f"{settings.data_dir} (which is not running); stop that program or choose a free "
            "port with ENVIROSTREAM_STORE_PORT"
        )
        raise ConfigurationError(setting="ENVIROSTREAM_STORE_PORT", message=msg)
    data = store_data_dir(settings)
    data.mkdir(parents=True, exist_ok=True)
    # A fresh data dir gets its random password here: the store is never started open.
    ensure_store_password(settings.store_password_path)
    argv = [
        sys.executable,
        "-m",
        "sinks.store",
        "--data-dir",
        str(data),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--user",
        STORE_USER,
        "--password-file",
        str(settings.store_password_path.resolve()),
        "--log-level",
        "DEBUG" if settings.log_level == "DEBUG" else "INFO",
    ]
    # The store runs from the repository root so `-m sinks.store` resolves to this checkout.
    root = Path(__file__).resolve().parents[1]
    return start_service(service, argv, ready, str(settings.store_url), timeout=timeout, cwd=root)


def stop_store(settings: Settings, timeout: float = 30.0) -> bool:
    """Stop the store (SIGTERM: running requests finish); True if it was running.

    Its data stays on disk. False too when a ClickHouse server is configured.
    """
    if not settings.uses_local_store or _running_pid(settings) is None:
        return False
    return stop_service(store_service(settings), timeout=timeout)


def store_status(settings: Settings) -> dict[str, Any]:
    """``running``, ``pid``, ``url``, ``answering``, ``data_dir``, ``log`` of the store."""
    service = store_service(settings)
    if not settings.uses_local_store:
        return {
            "running": False,
            "pid": None,
            "url": str(settings.store_url),
            "answering": False,
            "data_dir": None,
            "local": False,
        }
    pid = _running_pid(settings)
    return {
        "running": pid is not None,
        "pid": pid,
        "url": str(settings.store_url),
        "answering": pid is not None and _store_answers(settings.store_port),
        "data_dir": str(store_data_dir(settings)),
        "log": str(service.log_file),
        "local": True,
    }
