"""Start, stop and inspect local background services (Kafka, the ClickHouse store, ...).

Each service has a pid file and a log file under ``<data_dir>/run`` and ``<data_dir>/logs``.
Start and stop are idempotent: starting a running service returns its pid, stopping a
stopped one does nothing. ``start_service`` waits until the service answers.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import ServiceUnavailableError

__all__ = [
    "ServiceProcess",
    "free_port",
    "port_open",
    "read_pid",
    "start_service",
    "stop_service",
    "wait_until",
]


@dataclass(frozen=True)
class ServiceProcess:
    """Where a local service keeps its pid and log."""

    name: str
    data_dir: Path

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "run" / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "logs" / f"{self.name}.log"


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now.

    The port is drawn from *below* the kernel's ephemeral range. A port the kernel hands out
    for outgoing connections can be taken by a client socket while its service restarts --
    and a client that retries ``connect`` to a dead loopback port inside that range may even
    connect to itself (TCP self-connect), so the service cannot bind it again.

    A port is never handed out twice by one process: settings draw several ports before any
    service binds them, and two equal draws made a broker and a worker fight over one port.
    """
    low, _high = _ephemeral_range()
    first, last = 20000, min(low - 1, 32000)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randint(first, last) if last > first else 0
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return int(sock.getsockname()[1])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited child not yet reaped) still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def read_pid(service: ServiceProcess) -> int | None:
    """The pid of the running service, or None (a stale pid file is removed)."""
    try:
        pid = int(service.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid):
        return pid
    service.pid_file.unlink(missing_ok=True)
    return None


def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``check`` until it returns True or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def start_service(
    service: ServiceProcess,
    argv: Sequence[str],
    ready: Callable[[], bool],
    address: str,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``argv`` in the background unless already running; wait until ``ready()``.

    Raises :class:`ServiceUnavailableError` (pointing at the log) when the process exits
    early or does not become ready within ``timeout`` seconds.
    """
    pid = read_pid(service)
    if pid is not None:
        if wait_until(ready, timeout):
            return pid
        raise ServiceUnavailableError(
            service.name, address, f"pid {pid} runs but does not answer; see {service.log_file}"
        )
    service.pid_file.parent.mkdir(parents=True, exist_ok=True)
    service.log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(service.log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,  # survives the CLI that started it; no terminal needed
        )
    service.pid_file.write_text(str(proc.pid))

    def _ready_or_dead() -> bool:
        return proc.poll() is not None or ready()

    wait_until(_ready_or_dead, timeout)
    if proc.poll() is not None:
        service.pid_file.unlink(missing_ok=True)
        tail = _tail(service.log_file)
        raise ServiceUnavailableError(
            service.name,
            address,
            f"it exited with code {proc.returncode}; last lines of {service.log_file}:\n{tail}",
        )
    if not ready():
        stop_service(service)
        raise ServiceUnavailableError(
            service.name, address, f"not ready after {timeout:.0f}s; see {service.log_file}"
        )
    return proc.pid


def stop_service(service: ServiceProcess, timeout: float = 30.0) -> bool:
    """Stop the service (SIGTERM, then SIGKILL after ``timeout``); True if it was running."""
    pid = read_pid(service)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    if not wait_until(lambda: not _alive(pid), timeout):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 10)
    service.pid_file.unlink(missing_ok=True)
    return True


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
