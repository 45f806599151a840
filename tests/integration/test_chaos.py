"""``envirostream bench chaos`` for 1.5 minutes on real services (own broker, store, worker).

The faults that work on this branch: the worker SIGKILLed every 30 s, the broker down for
twice the idle close, malformed records, a recorded CSV and a 5-year monthly series replayed
mid-run, gateway_outage and clock_skew devices. Two stay off until the "outage" branch is
merged (see docs/chaos.md for what they do today): the store outage (the sink's retry) and
the bench's default 30-year series (360 months in one insert: ClickHouse refuses a block over
100 partitions, TOO_MANY_PARTS, and the worker crash-loops; that branch splits the block).
Every produced reading id must be in ``readings FINAL`` once, every window must equal its
recomputation from the readings, no alert may be sent twice, and the only dead letters
are the injected ones. Unplanned worker exits are not asserted: on this branch a worker
restarted just before the broker stops can exit while restoring alert state
(``_UNKNOWN_PARTITION`` from ``streams/alert_log.py``'s watermark query, no retry); the bench
restarts it and counts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.chaos import run_chaos_bench
from core.errors import EnviroStreamError
from tests.integration.conftest import make_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = make_settings(Path(tmp_path_factory.mktemp("chaos")))
    try:
        return run_chaos_bench(base, minutes=1.5, devices=24, seed=3, store_outage=True, years=30)
    except (EnviroStreamError, OSError) as exc:
        pytest.fail(f"the chaos bench could not run its services: {exc}")


def test_the_run_was_hurt_and_sent_every_kind_of_input(figures: dict[str, Any]) -> None:
    assert figures["worker_kills"] >= 2
    assert figures["broker_outage_s"] > 10  # twice the bench's idle close (10 s)
    assert figures["gateway_outage_devices"] > 0
    assert figures["clock_skew_devices"] > 0
    assert figures["produced_fleet"] > 60 * figures["devices"]  # a minute and more at 1 Hz
    assert figures["produced_years"] == 360  # 30 years of monthly rows: 360 partitions
    assert figures["store_outage_s"] > 0
    assert figures["produced_history"] > 1000
    assert figures["malformed_injected"] == 5


def test_no_reading_is_lost_or_stored_twice(figures: dict[str, Any]) -> None:
    assert figures["lost"] == 0, figures["lost_sample"]
    assert figures["stored"] == figures["produced"]
    assert figures["duplicated"] == 0


def test_every_window_equals_its_recomputation(figures: dict[str, Any]) -> None:
    assert figures["windows_checked"] > figures["produced_history"]  # hourly rows, 1-min windows
    assert figures["mismatches"] == 0, figures["mismatch_sample"]


def test_no_alert_is_sent_twice(figures: dict[str, Any]) -> None:
    assert figures["duplicate_notifications"] == 0


def test_only_the_injected_records_are_dead_lettered(figures: dict[str, Any]) -> None:
    assert figures["dlq_injected"] == figures["malformed_injected"]
    assert figures["dlq_other"] == 0, figures["dlq_by_reason"]
