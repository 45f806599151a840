"""The operator's web view in headless Chromium against the real pipeline.

A real worker raises alerts from readings produced to Kafka after the page loaded; the board
shows them without a reload (the live stream), the Acknowledge button's feedback goes
through the API and ``telemetry.alerts.feedback`` to the worker, whose ACKNOWLEDGED version
lands in ClickHouse and comes back to the board. The device page charts the readings the
store holds; a key of another tenant sees none of it.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.browser.stack import WebStack, cell_temperatures, wait_until

pytestmark = pytest.mark.integration

TENANT_A, TENANT_B = "tenant-a", "tenant-b"
LIVE_TIMEOUT = 90.0  # seconds for a produced reading to become a visible alert


def now_ms() -> int:
    return int(time.time() * 1000)


def sign_in(browser: WebDriver, url: str, key: str) -> None:
    """Open ``url`` in a fresh session, enter ``key`` in the prompt."""
    browser.get(url)
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    prompt = wait_until(
        lambda: browser.find_element(By.ID, "key-prompt").is_displayed(), 10, "the key prompt"
    )
    assert prompt
    field = browser.find_element(By.ID, "key-input")
    field.send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()


def wait_live(browser: WebDriver) -> None:
    status = browser.find_element(By.ID, "live-status")
    try:
        wait_until(lambda: status.get_attribute("data-state") == "live", 30, "a live stream")
    except AssertionError as exc:
        shown = f"{status.get_attribute('data-state')!r} ({status.text!r})"
        msg = f"{exc}: the board says {shown}; console: {browser.get_log('browser')}"
        raise AssertionError(msg) from None


def alert_rows(browser: WebDriver, prefix: str = "") -> list[WebElement]:
    """The board's rows whose alert id starts with ``prefix`` (all rows: ``""``)."""
    match = f'^="{prefix}"' if prefix else ""
    return browser.find_elements(By.CSS_SELECTOR, f"#alerts tbody tr[data-alert-id{match}]")


def row_attr(browser: WebDriver, alert_id: str, name: str) -> str | None:
    try:
        rows = browser.find_elements(
            By.CSS_SELECTOR, f'#alerts tbody tr[data-alert-id="{alert_id}"]'
        )
        return rows[0].get_attribute(name) if rows else None
    except StaleElementReferenceException:  # re-rendered between find and read
        return None


def click_in_row(browser: WebDriver, alert_id: str, action: str) -> None:
    """Click a row's button; the board re-renders on every stream event, so retry."""
    selector = f'#alerts tbody tr[data-alert-id="{alert_id}"] button[data-action="{action}"]'

    def click() -> bool:
        try:
            button = browser.find_element(By.CSS_SELECTOR, selector)
            assert button.is_enabled(), f"the {action} button of {alert_id} is disabled"
            button.click()
            return True
        except StaleElementReferenceException:
            return False

    wait_until(click, 10, f"clicking {action} on {alert_id}")


def stored_alert(stack: WebStack, alert_id: str) -> tuple[str, int] | None:
    rows = stack.rows(
        "SELECT state, version FROM alerts FINAL WHERE alert_id = {id:String}", id=alert_id
    )
    return (str(rows[0][0]), int(rows[0][1])) if rows else None


def test_new_alert_appears_live_and_its_acknowledgement_reaches_clickhouse(
    stack: WebStack, browser: WebDriver
) -> None:
    key = stack.key(TENANT_A, "operate", "browser test")
    sign_in(browser, stack.url + "/", key)
    wait_live(browser)
    browser.execute_script("window.__pageMarker = 'loaded once'")
    assert not alert_rows(browser, f"{TENANT_A}/web-bat-1/")

    stack.register_asset(TENANT_A, "web-bat-1", site="north-yard", model="BP-9")
    produced = time.monotonic()
    stack.produce(cell_temperatures(TENANT_A, "web-bat-1", now_ms(), normal=20, hot=5))
    rows = wait_until(
        lambda: alert_rows(browser, f"{TENANT_A}/web-bat-1/"), LIVE_TIMEOUT, "the new alert row"
    )
    shown_s = time.monotonic() - produced
    alert_id = str(rows[0].get_attribute("data-alert-id"))
    assert browser.execute_script("return window.__pageMarker") == "loaded once", "page reloaded"
    assert row_attr(browser, alert_id, "data-state") == "FIRING"
    cells = rows[0].find_elements(By.TAG_NAME, "td")
    assert "CRITICAL" in cells[0].text and "web-bat-1" in cells[2].text
    assert cells[3].text == "north-yard"  # the registry's site, joined into the live alert

    wait_until(lambda: stored_alert(stack, alert_id), 60, f"{alert_id} in ClickHouse")
    browser.find_element(By.ID, "operator").send_keys("Ada")
    clicked = time.monotonic()
    click_in_row(browser, alert_id, "ack")
    state = wait_until(
        lambda: (s := stored_alert(stack, alert_id)) and s[0] == "ACKNOWLEDGED" and s,
        60,
        f"the ACKNOWLEDGED version of {alert_id} in ClickHouse",
    )
    stored_s = time.monotonic() - clicked
    wait_until(
        lambda: row_attr(browser, alert_id, "data-state") == "ACKNOWLEDGED",
        30,
        "the ACKNOWLEDGED badge on the board",
    )
    assert row_attr(browser, alert_id, "data-version") == str(state[1])
    assert browser.execute_script("return window.__pageMarker") == "loaded once", "page reloaded"
    print(f"alert on the board {shown_s:.1f}s after its readings were produced; ")
    print(f"ACKNOWLEDGED in ClickHouse {stored_s:.1f}s after the click")

    # False positive on the acknowledged alert: RESOLVED (feedback noted) in the store and
    # on the board, where it stays greyed for a while instead of vanishing.
    click_in_row(browser, alert_id, "false-positive")
    wait_until(
        lambda: (s := stored_alert(stack, alert_id)) and s[0] == "RESOLVED",
        60,
        f"the RESOLVED version of {alert_id} in ClickHouse",
    )
    wait_until(
        lambda: row_attr(browser, alert_id, "data-state") == "RESOLVED",
        30,
        "the RESOLVED badge on the board",
    )
    assert "resolved" in str(row_attr(browser, alert_id, "class"))


def path_points(d: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r"[ML](-?[\d.]+) (-?[\d.]+)", d)]


def test_device_page_charts_the_stored_readings_and_the_alert_interval(
    stack: WebStack, browser: WebDriver
) -> None:
    device, normal, hot = "web-bat-2", 100, 10
    key = stack.key(TENANT_A, "read", "device page")
    stack.produce(cell_temperatures(TENANT_A, device, now_ms() - 5_000, normal, hot))
    wait_until(
        lambda: (
            stack.rows("SELECT count() FROM readings FINAL WHERE device_id = {d:String}", d=device)[
                0
            ][0]
            == normal + hot
        ),
        60,
        "the readings in ClickHouse",
    )
    wait_until(
        lambda: stack.rows(
            "SELECT count() FROM alerts FINAL WHERE device_id = {d:String}", d=device
        )[0][0],
        60,
        "the device's alert in ClickHouse",
    )

    sign_in(browser, f"{stack.url}/devices/{device}", key)
    chart = wait_until(
        lambda: browser.find_elements(
            By.CSS_SELECTOR, 'svg.chart[data-capability="CELL_TEMPERATURE"]'
        ),
        30,
        "the CELL_TEMPERATURE chart",
    )[0]
    assert chart.get_attribute("data-points") == str(normal + hot)
    points = path_points(str(chart.find_element(By.CSS_SELECTOR, "path.series").get_attribute("d")))
    assert len(points) == normal + hot
    xs = [x for x, _ in points]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    # SVG y grows downwards: the hot readings (65 degC) are drawn above every normal one.
    assert max(y for _, y in points[normal:]) < min(y for _, y in points[:normal])
    intervals = chart.find_elements(
        By.CSS_SELECTOR, f'rect.alert-interval[data-alert-id^="{TENANT_A}/{device}/"]'
    )
    assert intervals, "no alert interval drawn for the device's alert"
    end = now_ms()
    anomalies = stack.get_json(
        f"/api/v1/devices/{device}/anomalies?start_ms={end - 3_600_000}&end_ms={end}", key
    )["anomalies"]
    expected = [a for a in anomalies if a["capability"] == "CELL_TEMPERATURE"]
    drawn = chart.find_elements(By.CSS_SELECTOR, "circle.anomaly")
    assert len(drawn) == len(expected) == int(str(chart.get_attribute("data-anomalies")))


def test_a_key_of_another_tenant_sees_none_of_its_alerts(
    stack: WebStack, browser: WebDriver
) -> None:
    key_b = stack.key(TENANT_B, "read", "tenant b's board")
    sign_in(browser, stack.url + "/", key_b)
    wait_live(browser)
    stack.produce(cell_temperatures(TENANT_A, "web-bat-3", now_ms(), normal=10, hot=5))
    stack.produce(cell_temperatures(TENANT_B, "web-b-1", now_ms(), normal=10, hot=5))
    wait_until(
        lambda: alert_rows(browser, f"{TENANT_B}/web-b-1/"), LIVE_TIMEOUT, "tenant B's own alert"
    )
    # Tenant A's alert was raised with B's: it is in ClickHouse, yet not on B's board.
    wait_until(
        lambda: stack.rows("SELECT count() FROM alerts FINAL WHERE device_id = 'web-bat-3'")[0][0],
        60,
        "tenant A's alert in ClickHouse",
    )
    shown = [r.get_attribute("data-alert-id") for r in alert_rows(browser)]
    assert shown and all(str(a).startswith(f"{TENANT_B}/") for a in shown), shown
    assert "web-bat" not in browser.find_element(By.ID, "alerts").text


def test_keys_stay_out_of_the_logs(stack: WebStack, browser: WebDriver) -> None:
    key = stack.key(TENANT_A, "read", "log check")
    stack.produce(cell_temperatures(TENANT_A, "web-bat-4", now_ms(), normal=5, hot=0))
    wait_until(
        lambda: stack.rows("SELECT count() FROM readings WHERE device_id = 'web-bat-4'")[0][0],
        60,
        "web-bat-4's readings in ClickHouse",
    )
    sign_in(browser, stack.url + "/fleet", key)
    wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, "#devices tbody tr"), 30, "the device list"
    )
    fleet = stack.get_json("/api/v1/fleet", key)
    wait_until(lambda: browser.find_element(By.ID, "fleet-updated").text, 30, "the fleet")
    bars = browser.find_elements(By.CSS_SELECTOR, "#alerts-by-severity .bar-row")
    shown = {b.get_attribute("data-name"): int(str(b.get_attribute("data-count"))) for b in bars}
    assert shown == fleet["alerts_by_severity"], shown
    logged: list[Any] = browser.get_log("browser")
    assert key not in stack.logs() and key not in str(logged)
    assert key not in browser.current_url
