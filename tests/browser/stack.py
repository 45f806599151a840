"""The real stack behind the web view, for the browser tests and the screenshot script.

:class:`WebStack` runs, on settings whose Kafka broker and chdb store already run: the
topics and tables, a real ``envirostream worker`` and a real ``envirostream api`` process
(uvicorn, ``create_app`` with the web view), each in a child process with its log under
``home``. :func:`new_browser` starts Debian's headless Chromium through Debian's
chromedriver (Selenium), or raises :class:`BrowserUnavailable` saying what is missing.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

from api.assets import upsert_asset
from api.keys import create_key
from api.models import Asset
from api.server import ApiProcess
from api.store import store_client
from core.settings import Settings
from infra.harness import WorkerProcess
from infra.processes import free_port
from schemas import AvroCodec
from topics import READINGS, TopicAdmin, topic_specs
from topics.producer import RecordProducer

__all__ = ["BrowserUnavailable", "WebStack", "new_browser", "reading", "wait_until"]

CHROMIUM = ("chromium", "chromium-browser")
INSTALL_HINT = "install Debian's chromium and chromium-driver: sh infra/install_chromium.sh"


class BrowserUnavailable(RuntimeError):
    """Headless Chromium could not be started (the message says why and what to install)."""


def new_browser(width: int = 1400, height: int = 900) -> WebDriver:
    """Debian's Chromium, headless, driven by Debian's chromedriver."""
    binary = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        missing = "chromium" if binary is None else "chromedriver"
        msg = f"{missing} is not on PATH; {INSTALL_HINT}"
        raise BrowserUnavailable(msg)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # containers and root: Chromium's sandbox needs user namespaces
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        f"--window-size={width},{height}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as exc:
        msg = f"headless Chromium ({binary}) did not start through {driver_path}: {exc.msg}"
        raise BrowserUnavailable(msg) from exc


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``check`` until it returns something truthy (returned); AssertionError naming
    ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout:.0f}s waiting for {what}"
            raise AssertionError(msg)
        time.sleep(interval)


def reading(
    tenant: str, device: str, capability: str, ts: int, value: float, seq: int
) -> dict[str, Any]:
    """A battery pack's reading (``UniversalSensorReading``)."""
    return {
        "reading_id": f"{tenant}/{device}/{capability}@{ts}",
        "device_id": device,
        "device_type": "BATTERY_PACK",
        "sensor_id": f"{device}/{capability.lower()}",
        "capability": capability,
        "value": value,
        "unit": "degC" if "TEMPERATURE" in capability else "%",
        "timestamp": ts,
        "sequence": seq,
        "quality": "GOOD",
        "tenant_id": tenant,
        "attributes": {},
        "label": None,
    }


def cell_temperatures(
    tenant: str, device: str, end_ms: int, normal: int, hot: int
) -> list[dict[str, Any]]:
    """``normal`` seconds of a gently varying cell temperature, then ``hot`` seconds above
    the 60 degC CRITICAL safety limit, one reading a second, the last at ``end_ms``."""
    n = normal + hot
    return [
        reading(
            tenant,
            device,
            "CELL_TEMPERATURE",
            end_ms - (n - 1 - i) * 1000,
            65.0 if i >= normal else 25.0 + 3.0 * math.sin(i / 10.0),
            i,
        )
        for i in range(n)
    ]


class WebStack:
    """Topics, tables, a worker and the API on ``settings`` (Kafka and the store run)."""

    def __init__(self, settings: Settings, home: Path) -> None:
        self.settings = settings.model_copy(update={"api_port": free_port()})
        self.home = home
        self.codec = AvroCodec()
        self.worker: WorkerProcess | None = None
        self.api: ApiProcess | None = None

    @property
    def url(self) -> str:
        if self.api is None:
            msg = "the API is not running: call start() first"
            raise RuntimeError(msg)
        return self.api.url

    def start(self) -> WebStack:
        TopicAdmin(self.settings.bootstrap_servers).create_missing(topic_specs(self.settings))
        self.client = store_client(self.settings)  # every table, the operator ones too
        try:
            self.worker = WorkerProcess(self.settings, self.home / "worker.log")
            self.worker.wait_healthy(120)
            self.api = ApiProcess(self.settings, self.home / "api.log")
            self.api.wait_ready(60)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.api is not None:
            self.api.stop()
        if self.worker is not None:
            self.worker.stop()

    def key(self, tenant: str, scope: str, name: str) -> str:
        """A new API key (as ``envirostream keys create`` makes one)."""
        return create_key(self.client, tenant, scope, name)[1]

    def register_asset(self, tenant: str, device: str, **fields: Any) -> None:
        """An asset registry entry (as ``envirostream assets load`` writes one)."""
        upsert_asset(self.client, tenant, device, Asset(**fields), dt.datetime.now(dt.UTC))

    def produce(self, records: list[dict[str, Any]]) -> None:
        """Readings to ``telemetry.readings``, keyed by device like every producer's."""
        producer = RecordProducer(self.settings.bootstrap_servers)
        producer.send_batch(
            READINGS,
            [str(r["device_id"]).encode() for r in records],
            self.codec.encode_batch("UniversalSensorReading", records),
        )
        undelivered = producer.flush(30)
        assert undelivered == 0, f"{undelivered} readings were not delivered to Kafka"

    def rows(self, sql: str, **parameters: Any) -> list[tuple[Any, ...]]:
        """Rows of ClickHouse SQL against the store (parameters bound by the driver)."""
        return list(self.client.query(sql, parameters=parameters).result_rows)

    def get_json(self, path: str, key: str) -> Any:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {key}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def logs(self) -> str:
        """The tails of the worker's and the API's logs (for a failure message)."""
        parts = []
        for name in ("worker.log", "api.log"):
            path = self.home / name
            text = path.read_text(errors="replace")[-3000:] if path.exists() else "(none)"
            parts.append(f"--- {name}:\n{text}")
        return "\n".join(parts)
