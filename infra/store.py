"""Start, stop and inspect the embedded ClickHouse store (``python -m sinks.store``)."""

from __future__ import annotations

import sys
import urllib.request
from typing import Any

from envirostream.errors import ConfigurationError
from envirostream.settings import Settings
from infra.processes import ServiceProcess, port_open, read_pid, start_service, stop_service

__all__ = ["start_store", "stop_store", "store_status"]


def _service(settings: Settings) -> ServiceProcess:
    return ServiceProcess("store", settings.data_dir)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as resp:
            return bool(resp.status == 200 and resp.read().startswith(b"Ok."))
    except OSError:
        return False


def start_store(settings: Settings, timeout: float = 60.0) -> int | None:
    """Start the store unless it runs (idempotent); None when a ClickHouse URL is configured."""
    if not settings.uses_local_store:
        return None
    service = _service(settings)
    port = settings.store_port
    if read_pid(service) is None and port_open("127.0.0.1", port):
        raise ConfigurationError(
            setting="ENVIROSTREAM_STORE_PORT",
            message=f"port {port} is taken by another program; choose a free port for the store",
        )
    data = (settings.data_dir / "clickhouse").resolve()
    argv = [sys.executable, "-m", "sinks.store", "--data-dir", str(data), "--port", str(port)]
    return start_service(service, argv, lambda: _answers(port), settings.store_url, timeout=timeout)


def stop_store(settings: Settings) -> bool:
    """Stop the store (True if it was running); its data stays on disk."""
    return stop_service(_service(settings))


def store_status(settings: Settings) -> dict[str, Any]:
    pid = read_pid(_service(settings))
    return {
        "running": pid is not None,
        "pid": pid,
        "url": settings.store_url,
        "answering": _answers(settings.store_port) if pid is not None else False,
        "data_dir": str(settings.data_dir / "clickhouse"),
    }
