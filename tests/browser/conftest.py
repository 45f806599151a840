"""Browser tests: headless Chromium against the real API, worker, Kafka broker and store.

``services`` (the integration tests' fixture) starts a Kafka broker and a chdb store for the
module; ``stack`` adds the topics, tables, a worker and the API process; ``browser`` is one
headless Chromium. Anything that cannot start fails the test with the reason, never a skip.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from core.settings import Settings
from tests.browser.stack import BrowserUnavailable, WebStack, new_browser
from tests.integration.conftest import services

__all__ = ["browser", "services", "stack"]


@pytest.fixture(scope="module")
def stack(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebStack]:
    web = WebStack(services, tmp_path_factory.mktemp("web"))
    try:
        web.start()
    except Exception as exc:
        pytest.fail(f"could not start the worker and the API: {exc}\n{web.logs()}")
    yield web
    web.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    try:
        driver = new_browser()
    except BrowserUnavailable as exc:
        pytest.fail(str(exc))
    yield driver
    driver.quit()
