"""The process harness: private services and ``envirostream worker`` subprocesses.

Benchmarks, ``envirostream up`` and the integration tests all run the pipeline the same
way, through this module:

* :func:`private_settings` -- settings with their own temp data dir, free loopback ports and
  consumer group, so a private pipeline never touches one already running;
* :func:`start_services` / :func:`stop_services` / :func:`private_services` -- Kafka and the
  embedded ClickHouse store of those settings; :func:`discard_private` deletes the temp
  data dir once a run succeeded (a failed run keeps it, for its logs);
* :class:`WorkerProcess` -- ``[sys.executable, "-m", "envirostream", "worker"]`` with exactly
  those settings in its environment and its output in a log file; waited on
  (:meth:`WorkerProcess.wait_for`, :meth:`WorkerProcess.wait_healthy`), stopped with
  SIGTERM then SIGKILL (:meth:`WorkerProcess.stop`) or SIGKILLed (:meth:`WorkerProcess.kill`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from core.errors import WorkerError
from core.settings import Settings, load_settings, settings_environ
from infra.kafka import start_kafka, stop_kafka
from infra.processes import free_port, port_open
from infra.store import start_store, stop_store

__all__ = [
    "REPO_ROOT",
    "WorkerProcess",
    "discard_private",
    "private_services",
    "private_settings",
    "start_services",
    "stop_services",
]

# `python -m envirostream` run from here imports this checkout's modules.
REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER_ARGV = (sys.executable, "-m", "envirostream", "worker")
_MADE: set[Path] = set()  # the temp data dirs private_settings made (discard_private's only)


def private_settings(base: Settings, prefix: str, **overrides: object) -> Settings:
    """Settings that leave a running pipeline (``base``) untouched; Kafka jars are shared.

    A fresh temp data dir (named ``prefix…``), free ports and an own consumer group;
    ``overrides`` win.
    """
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    _MADE.add(data_dir)
    values: dict[str, object] = {
        "data_dir": data_dir,
        "cache_dir": base.cache_dir.resolve(),
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "kafka_secure_port": free_port(),
        "store_port": free_port(),
        "metrics_port": free_port(),
        "topic_partitions": base.topic_partitions,
        "app_id": f"bench-{uuid.uuid4().hex[:8]}",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return load_settings({}, **values)


def start_services(settings: Settings, *, store: bool = True) -> None:
    """Start Kafka (and the store) of ``settings``; on failure stop what started, re-raise."""
    try:
        start_kafka(settings)
        if store:
            start_store(settings)
    except BaseException:
        stop_services(settings)
        raise


def stop_services(settings: Settings) -> None:
    """Stop the store and Kafka of ``settings`` (each only if it runs); data stays on disk."""
    stop_store(settings)
    stop_kafka(settings)


def discard_private(settings: Settings) -> bool:
    """Delete the temp data dir :func:`private_settings` made for ``settings`` (Kafka's log,
    the store, worker logs: a bench of millions of readings leaves hundreds of MB); any
    other data dir is never touched. Returns whether one was deleted. Services must be
    stopped first."""
    made = settings.data_dir
    if made not in _MADE:
        return False
    _MADE.discard(made)
    shutil.rmtree(made, ignore_errors=True)
    return True


@contextmanager
def private_services(settings: Settings, *, store: bool = True) -> Iterator[Settings]:
    """Kafka (and the store) of ``settings`` running for the ``with`` block, stopped after;
    the private data dir is then deleted, or kept (and named on stderr) if the block
    raised."""
    start_services(settings, store=store)
    ok = False
    try:
        yield settings
        ok = True
    finally:
        stop_services(settings)
        if ok:
            discard_private(settings)
        elif settings.data_dir in _MADE:
            print(f"kept {settings.data_dir} for its logs", file=sys.stderr)


class WorkerProcess:
    """``envirostream worker`` in a child process with ``settings``; output kept in ``log``.

    The child runs in this process group (Ctrl-C reaches it too), from ``cwd`` (default
    :data:`REPO_ROOT`, so ``-m`` imports this checkout; relative paths in the settings are
    read from there). ``env`` (default: this process's environment) is the base that
    ``settings`` override.
    """

    def __init__(
        self,
        settings: Settings,
        log: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.settings = settings
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(log, "ab")  # noqa: SIM115 - lives as long as the worker
        self.proc = subprocess.Popen(
            WORKER_ARGV,
            env=settings_environ(settings, env),
            stdin=subprocess.DEVNULL,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            cwd=cwd,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit code, or None while the worker runs."""
        return self.proc.poll()

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the worker's log."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def wait_for(
        self,
        what: str,
        check: Callable[[], bool],
        timeout: float,
        *,
        progress: Callable[[], str] | None = None,
        interval: float = 0.5,
        note_every: float = 30.0,
    ) -> float:
        """Poll ``check`` until true; return the seconds it took.

        Raises :class:`WorkerError` (naming the log) when the worker exits first or
        ``timeout`` seconds pass. With ``progress``, prints where things stand every
        ``note_every`` seconds and adds it to the timeout message.
        """
        started = time.monotonic()
        next_note = started + note_every
        while not check():
            now = time.monotonic()
            if self.proc.poll() is not None:
                msg = (
                    f"worker exited ({self.proc.returncode}) while waiting for {what}; "
                    f"see {self.log}"
                )
                raise WorkerError(msg, self.log)
            if now - started > timeout:
                state = f" ({progress()})" if progress is not None else ""
                msg = f"timed out after {timeout:.0f}s waiting for {what}{state}; see {self.log}"
                raise WorkerError(msg, self.log)
            if progress is not None and now > next_note:
                print(f"  waiting for {what}: {progress()}", flush=True)
                next_note = now + note_every
            time.sleep(interval)
        return time.monotonic() - started

    def wait_healthy(self, timeout: float = 120.0) -> float:
        """Wait until the worker serves ``/metrics`` (its port answers); seconds it took."""
        port = self.settings.metrics_port
        if port == 0:
            msg = "the worker's health is read on /metrics: set ENVIROSTREAM_METRICS_PORT"
            raise WorkerError(msg, self.log)
        return self.wait_for(
            f"/metrics on :{port}", lambda: port_open("127.0.0.1", port), timeout, interval=0.2
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a clean shutdown: final flush and commit), SIGKILL after ``timeout``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._fh.close()
        return self.proc.returncode

    def kill(self) -> int:
        """SIGKILL: no clean shutdown, no final commit (what a crash looks like)."""
        with suppress(ProcessLookupError):
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._fh.close()
        return self.proc.returncode

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the live worker (``/proc``; -1 when unreadable)."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return -1.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_kib(self) -> int:
        """Peak resident memory of the live worker in KiB (``VmHWM``; -1 when unreadable)."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return -1
