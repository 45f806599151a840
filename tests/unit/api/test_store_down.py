"""With the store away the API still starts, says so in /health and answers 503, not 500."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from api.app import create_app
from core.settings import load_settings
from infra.processes import free_port


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    settings = load_settings(
        {}, data_dir=tmp_path, store_port=free_port(), api_port=free_port(), log_level="ERROR"
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), port=settings.api_port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{settings.api_port}"
    server.should_exit = True
    thread.join(10)


def _get(url: str, key: str | None = None) -> tuple[int, dict[str, str], dict[str, object]]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def test_health_reports_the_store_down(url: str) -> None:
    assert _get(url + "/api/v1/health")[::2] == (200, {"status": "ok", "store": False})


def test_a_keyed_request_gets_503_naming_the_store(url: str) -> None:
    status, headers, body = _get(url + "/api/v1/devices", "es_whatever")
    assert status == 503 and headers["retry-after"] == "5"
    assert "ClickHouse" in str(body["detail"]) and "did not answer" in str(body["detail"])
