"""A password in ``ENVIROSTREAM_CLICKHOUSE_URL`` / ``_ALERTMANAGER_URL`` (and Kafka's SASL
password, ``ENVIROSTREAM_KAFKA_SASL_PASSWORD``, the same string here) is never shown.

Every path that prints or logs these URLs runs here with a password in them: the settings'
repr, a configuration error, ``infra status``, ``status``, ``up``'s summary, the store's
and the client's messages, the worker's and the Alertmanager forwarder's log lines.
"""

from __future__ import annotations

import logging
import traceback
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from core.errors import ConfigurationError, ServiceUnavailableError
from core.metrics import PipelineMetrics
from core.secrets import SecretUrl, redact_url
from core.settings import Settings, load_settings, settings_environ
from infra.processes import free_port

PASSWORD = "s3cr3tPW"
URL = f"http://user:{PASSWORD}@127.0.0.1:1/"


@pytest.fixture
def secret_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "ENVIROSTREAM_CLICKHOUSE_URL": URL,
        "ENVIROSTREAM_ALERTMANAGER_URL": URL,
        "ENVIROSTREAM_DATA_DIR": str(tmp_path / "data"),
        "ENVIROSTREAM_METRICS_PORT": str(free_port()),
        "ENVIROSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "ENVIROSTREAM_KAFKA_SASL_USERNAME": "user",
        "ENVIROSTREAM_KAFKA_SASL_PASSWORD": PASSWORD,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def settings(secret_env: dict[str, str]) -> Settings:
    return load_settings(secret_env)


def test_redaction_keeps_the_address_and_hides_only_the_password() -> None:
    assert redact_url(URL) == "http://user:***@127.0.0.1:1/"
    assert redact_url("https://ch:8443/db?x=1") == "https://ch:8443/db?x=1"
    assert redact_url("http://user@ch:8123") == "http://user@ch:8123"
    assert redact_url("http://u:p@ss@ch:8123/a@b") == "http://u:***@ch:8123/a@b"


def test_settings_print_redacted_but_connect_with_the_password(settings: Settings) -> None:
    for shown in (repr(settings), str(settings), str(settings.clickhouse_url), repr(settings)):
        assert PASSWORD not in shown
    assert "user:***@127.0.0.1:1" in repr(settings)
    assert f"{settings.store_url}" == "http://user:***@127.0.0.1:1"
    assert settings.store_url.get_secret_value() == URL.rstrip("/")
    assert isinstance(settings.alertmanager_url, SecretUrl)
    # A child process (worker, store) gets the real URL, or it could not connect.
    env = settings_environ(settings, {})
    assert env["ENVIROSTREAM_CLICKHOUSE_URL"] == URL.rstrip("/")
    assert load_settings(env) == settings


def test_a_bad_url_is_refused_without_showing_its_password() -> None:
    bad = f"ftp://user:{PASSWORD}@127.0.0.1:1/"
    for variable in ("ENVIROSTREAM_CLICKHOUSE_URL", "ENVIROSTREAM_ALERTMANAGER_URL"):
        with pytest.raises(ConfigurationError) as err:
            load_settings({variable: bad})
        assert err.value.setting == variable
        assert "http://" in str(err.value) and "ftp://user:***@127.0.0.1:1/" in str(err.value)
        shown = "".join(traceback.format_exception(err.value))  # chained causes included
        assert PASSWORD not in shown


def test_cli_reports_a_bad_url_without_its_password(
    secret_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from envirostream.cli import main

    monkeypatch.setenv("ENVIROSTREAM_CLICKHOUSE_URL", URL.replace("http", "ftp"))
    assert main(["infra", "status"]) == 2
    out, err = capsys.readouterr()
    assert "ENVIROSTREAM_CLICKHOUSE_URL" in err and PASSWORD not in out + err


def test_infra_status_shows_the_store_without_its_password(
    secret_env: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    from envirostream.cli import main

    assert main(["infra", "status"]) == 0
    out, err = capsys.readouterr()
    assert "user:***@127.0.0.1:1" in out
    assert "SASL_SSL (SCRAM-SHA-512, user 'user')" in out
    assert PASSWORD not in out + err


def test_status_shows_the_store_without_its_password(
    secret_env: dict[str, str], capsys: pytest.CaptureFixture
) -> None:
    from envirostream.cli import main

    assert main(["status"]) == 1  # nothing answers: the worker is down
    out, err = capsys.readouterr()
    assert "store http://user:***@127.0.0.1:1" in out
    assert PASSWORD not in out + err


def test_up_summary_shows_the_store_without_its_password(settings: Settings) -> None:
    from envirostream.demo import Snapshot, format_summary
    from producers.simulator import SimulationReport

    lines = format_summary(Snapshot(at=1.0), Snapshot(at=0.0), SimulationReport(), 0.0, settings)
    assert "ClickHouse http://user:***@127.0.0.1:1" in lines[0]
    assert PASSWORD not in "\n".join(lines)


def test_store_and_client_messages_hide_the_password(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from infra.store import start_store, store_status
    from sinks.client import get_client

    caplog.set_level(logging.DEBUG)
    assert start_store(settings) is None  # a server is configured: nothing starts
    assert PASSWORD not in str(store_status(settings))
    with pytest.raises(ServiceUnavailableError) as err:
        get_client(settings)
    assert "127.0.0.1:1" in str(err.value) and PASSWORD not in str(err.value)
    assert PASSWORD not in caplog.text


def test_worker_logs_the_alertmanager_url_without_its_password(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import streams.run as run

    class Stub:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: []

    class Started(Exception):
        """Raised where Faust would start: everything before it has run."""

    def create_app(*args: Any) -> None:
        raise Started

    forwarded: list[str] = []

    class Forwarder:
        def __init__(self, url: str, metrics: PipelineMetrics, **kwargs: Any) -> None:
            forwarded.append(url)

    for name in ("TopicAdmin", "RecordProducer", "AvroCodec"):
        monkeypatch.setattr(run, name, Stub)
    monkeypatch.setattr(run, "wait_for_broker", lambda *a, **k: None)
    monkeypatch.setattr(run, "open_sink", lambda *a, **k: None)
    monkeypatch.setattr(run, "serve_metrics", lambda *a, **k: None)
    monkeypatch.setattr(run, "create_app", create_app)
    monkeypatch.setattr(run, "AlertmanagerForwarder", Forwarder)
    caplog.set_level(logging.INFO)
    with pytest.raises(Started):
        run.run_worker(settings)
    assert "Alertmanager at http://user:***@127.0.0.1:1" in caplog.text
    assert PASSWORD not in caplog.text
    assert forwarded == [URL.rstrip("/")]  # the forwarder itself posts with the password


def test_alertmanager_forwarder_logs_hide_the_password(caplog: pytest.LogCaptureFixture) -> None:
    from sinks.alertmanager import AlertmanagerForwarder

    forwarder = AlertmanagerForwarder(
        URL, PipelineMetrics(CollectorRegistry()), retries=0, sleep=lambda s: None
    )
    caplog.set_level(logging.DEBUG)
    assert forwarder._post([{"labels": {}}]) is False  # the logging path
    assert "127.0.0.1:1" in caplog.text and PASSWORD not in caplog.text
