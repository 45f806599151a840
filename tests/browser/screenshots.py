"""Screenshots of the web view from a real run: ``python -m tests.browser.screenshots``.

Starts a private Kafka broker and store (free ports, a temp data dir), the worker and the
API, runs the simulated fleet over the last ``--minutes`` of event time (as fast as the
worker takes it, with failing devices), gives the devices sites in the asset registry, then
opens the alert board and the page of the device with the most alerts and anomalies in
headless Chromium and saves ``docs/screenshots/board.png`` and ``device.png``. Everything it
started is stopped at the end. ``make screenshots`` runs it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from core.settings import load_settings, settings_environ
from infra.harness import REPO_ROOT, private_services, private_settings
from tests.browser.stack import WebStack, new_browser, wait_until

OUT = REPO_ROOT / "docs" / "screenshots"
SITES = ("north-yard", "substation-7", "depot-east", "plant-2")


def simulate(stack: WebStack, devices: int, minutes: int) -> None:
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - minutes * 60))
    argv = [
        sys.executable, "-m", "envirostream", "simulate",
        "--devices", str(devices), "--kinds", "grid,battery,vehicle,machine", "--rate", "1",
        "--speedup", "0", "--start", start, "--duration", str(minutes * 60),
        "--failure-rate", "0.4", "--onset-delay", str(minutes * 30), "--seed", "15",
    ]  # fmt: skip
    subprocess.run(argv, env=settings_environ(stack.settings), cwd=REPO_ROOT, check=True)


def acknowledge_one(browser: WebDriver) -> None:
    """Acknowledge the second alert on the board and wait for its ACKNOWLEDGED version
    (through the API, the worker and the live stream), so the picture shows both states."""
    rows = browser.find_elements(By.CSS_SELECTOR, '#alerts tbody tr[data-state="FIRING"]')
    if len(rows) < 2:
        return
    alert_id = rows[1].get_attribute("data-alert-id")
    row = f'#alerts tbody tr[data-alert-id="{alert_id}"]'
    browser.find_element(By.CSS_SELECTOR, row + ' button[data-action="ack"]').click()
    wait_until(
        lambda: browser.find_elements(By.CSS_SELECTOR, row + '[data-state="ACKNOWLEDGED"]'),
        60,
        "the acknowledged alert on the board",
    )
    time.sleep(4)  # the highlight of the updated row fades


def busiest_device(stack: WebStack, key: str) -> str | None:
    """The alerting device with the most anomaly points in the last hour (as the API and
    so the device page count them)."""
    end = int(time.time() * 1000)
    alerting = {a["device_id"] for a in stack.get_json("/api/v1/alerts?limit=500", key)["alerts"]}
    counts = {
        d: len(
            stack.get_json(f"/api/v1/devices/{d}/anomalies?start_ms={end - 3_600_000}&end_ms={end}",
                           key)["anomalies"]
        )
        for d in sorted(alerting)
    }  # fmt: skip
    return max(counts, key=lambda d: counts[d]) if counts else None


def settled(stack: WebStack, quiet: float = 6.0, timeout: float = 300.0) -> int:
    """Wait until the stored reading count stops moving (the worker caught up)."""
    last, since = -1, time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        count = int(stack.rows("SELECT count() FROM readings")[0][0])
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since > quiet:
            return count
        time.sleep(1)
    return last


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=16)
    parser.add_argument("--minutes", type=int, default=40)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    base = load_settings({}, cache_dir=REPO_ROOT / ".cache")
    settings = private_settings(base, "envirostream-screens-", topic_partitions=4)
    home = Path(tempfile.mkdtemp(prefix="envirostream-screens-logs-"))
    args.out.mkdir(parents=True, exist_ok=True)
    with private_services(settings):
        stack = WebStack(settings, home).start()
        try:
            simulate(stack, args.devices, args.minutes)
            print(f"{settled(stack)} readings stored")
            devices = [str(r[0]) for r in stack.rows("SELECT DISTINCT device_id FROM readings")]
            for i, device in enumerate(sorted(devices)):
                stack.register_asset(
                    "default", device, site=SITES[i % len(SITES)], model=f"M-{i % 3 + 1}"
                )
            key = stack.key("default", "operate", "screenshots")
            focus = busiest_device(stack, key)
            browser = new_browser(1400, 900)
            try:
                browser.get(stack.url + "/")
                browser.find_element(By.ID, "key-input").send_keys(key + "\n")
                wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "#alerts tbody tr"), 30,
                           "alerts on the board")  # fmt: skip
                browser.find_element(By.ID, "operator").send_keys("Ada")
                acknowledge_one(browser)
                browser.save_screenshot(str(args.out / "board.png"))
                if focus:
                    browser.set_window_size(1400, 1200)
                    browser.get(f"{stack.url}/devices/{focus}")
                    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "svg.chart"), 30,
                               "the device's charts")  # fmt: skip
                    time.sleep(1)
                    browser.save_screenshot(str(args.out / "device.png"))
            finally:
                browser.quit()
        finally:
            stack.stop()
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)
    for name in ("board.png", "device.png"):
        path = args.out / name
        if path.exists():
            print(f"{path.relative_to(REPO_ROOT)}: {path.stat().st_size // 1024} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
