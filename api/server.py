"""Serving the API with uvicorn: in the foreground (``envirostream api``) or as a child
process of ``envirostream up`` (:class:`ApiProcess`)."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

from core.errors import EnviroStreamError
from core.settings import Settings, settings_environ

__all__ = ["ApiProcess", "api_url", "serve"]


def api_url(settings: Settings, port: int | None = None) -> str:
    host = settings.api_host
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{settings.api_port if port is None else port}"


def serve(settings: Settings) -> None:
    """Run the API until SIGINT/SIGTERM (uvicorn handles both and drains requests)."""
    import uvicorn

    from api.app import create_app

    if settings.api_port == 0:
        msg = "ENVIROSTREAM_API_PORT is 0 (off); set a port to serve the API"
        raise EnviroStreamError(msg)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level == "DEBUG",
    )
    server = uvicorn.Server(config)
    logging.getLogger(__name__).info("API on %s", api_url(settings))
    server.run()
    if not server.started:
        msg = (
            f"the API could not listen on {settings.api_host}:{settings.api_port} "
            "(ENVIROSTREAM_API_HOST / ENVIROSTREAM_API_PORT; is the port taken?)"
        )
        raise EnviroStreamError(msg)


class ApiProcess:
    """``envirostream api`` in a child process with exactly ``settings``; output in ``log``."""

    def __init__(self, settings: Settings, log: Path, cwd: Path | None = None) -> None:
        self.settings = settings
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "envirostream", "api"],
                env=settings_environ(settings),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    @property
    def url(self) -> str:
        return api_url(self.settings)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until ``/api/v1/health`` answers; raise with the log's tail if it does not."""
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + "/api/v1/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        self.stop()
        msg = f"the API did not answer at {self.url} within {timeout:.0f}s; {self.log}:\n{tail}"
        raise EnviroStreamError(msg)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode
