"""Real services for integration tests: a Kafka broker and a chdb store per test module.

Each module gets its own data directory, free loopback ports and database, so modules
never see each other's data and can run beside a developer's own pipeline. A service that
cannot start fails the test with the reason (never a skip).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.errors import WorkerError
from core.settings import Settings, load_settings, settings_environ
from infra.harness import REPO_ROOT, WorkerProcess, start_services, stop_services
from infra.processes import free_port
from infra.prometheus_local import LocalService, start_alertmanager, stop_local

REPO = REPO_ROOT


def service_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process use exactly these settings."""
    return settings_environ(settings)


def make_settings(tmp: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp / "data",
        "cache_dir": REPO / ".cache",
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "kafka_secure_port": free_port(),
        "store_port": free_port(),
        "metrics_port": free_port(),
        "api_port": free_port(),
        "topic_partitions": 4,
        "window_seconds": 10,
        "allowed_lateness_seconds": 5,
        "idle_close_seconds": 3,
        "worker_batch_seconds": 0.2,
        "sink_batch_seconds": 0.5,
        "commit_interval_seconds": 0.5,
        "session_timeout_seconds": 6,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return load_settings({}, **values)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A running Kafka broker and chdb store; stopped after the module."""
    settings = make_settings(tmp_path_factory.mktemp("pipeline"))
    try:
        start_services(settings)
    except Exception as exc:
        pytest.fail(f"could not start the real services: {exc}")
    yield settings
    stop_services(settings)


def wait_for_worker(
    check: Callable[[], bool], timeout: float, what: str, worker: WorkerProcess
) -> float:
    """Poll ``check`` until true; fail with the worker's log if it dies or time runs out.

    Returns the seconds it took (tests report how fast a condition was reached).
    """
    try:
        return worker.wait_for(what, check, timeout, interval=0.3)
    except WorkerError as exc:
        pytest.fail(f"{exc}; worker log:\n{worker.tail()}")


class Webhook:
    """Collects Alertmanager's webhook notifications."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(json.loads(body) | {"path": self.path})
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"


def shortened_config(webhook: str) -> dict[str, Any]:
    """The project's Alertmanager config, webhooks pointed here, timings in seconds."""
    config: dict[str, Any] = yaml.safe_load(
        (REPO / "infra" / "alertmanager" / "alertmanager.yml").read_text()
    )
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook + "/" + receiver["name"]
    routes = [config["route"], *config["route"]["routes"]]
    for route in routes:
        route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    return config


@pytest.fixture(scope="module")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalService, Webhook]]:
    home = tmp_path_factory.mktemp("alertmanager")
    webhook = Webhook()
    config = home / "alertmanager.yml"
    config.write_text(yaml.safe_dump(shortened_config(webhook.url)))
    try:
        am = start_alertmanager(home, free_port(), config)
    except Exception as exc:
        webhook.server.shutdown()
        pytest.fail(f"could not start Alertmanager: {exc}")
    yield am, webhook
    stop_local(am)
    webhook.server.shutdown()
