"""The chaos bench's plan and checks, without services: the ids it expects are the ids the
encoder writes, the schedule keeps kills out of outages, windows compare field by field."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

from bench.chaos import chaos_schedule
from bench.chaos_check import compare_windows, tick_reading_ids
from bench.chaos_load import chaos_fleet, write_years_csv
from producers.encoding import TickEncoder
from producers.replay import CsvSource, Row
from schemas import AvroCodec

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def test_expected_ids_are_the_encoded_ids_under_skew_and_gateway_flushes() -> None:
    fleet = chaos_fleet(40, 7, run_s=20)  # onsets within the first ~10 s, outage 4 s
    encoder, codec = TickEncoder(fleet, codec := AvroCodec()), codec
    expected: list[str] = []
    encoded: list[str] = []
    off_clock = 0
    for seq in range(40):
        tick = fleet.tick(START_MS + seq * 1000)
        _, values = encoder.encode(tick, seq)
        expected += tick_reading_ids(tick)
        records = [codec.decode(v, "UniversalSensorReading") for v in values]
        encoded += [r["reading_id"] for r in records]
        off_clock += sum(r["timestamp"] != START_MS + seq * 1000 for r in records)
    assert encoded == expected
    assert len(set(encoded)) == len(encoded)
    assert off_clock > 0  # skewed stamps and flushed backlogs were among them


def test_a_quarter_of_the_fleet_is_afflicted_by_both_scenarios() -> None:
    fleet = chaos_fleet(40, 7, run_s=600)
    kinds = list(fleet.assignments.values())
    assert 4 <= len(kinds) <= 16
    assert {"gateway_outage", "clock_skew"} == set(kinds)


def test_kills_every_30_s_held_while_a_service_is_down() -> None:
    events = chaos_schedule(600, 10, store_outage=True)
    outages = [(e.at_s, e.at_s + e.seconds) for e in events if e.seconds]
    kills = [e.at_s for e in events if e.action == "kill"]
    assert len(outages) == 2
    assert all(not (a - 5 <= k < b + 15) for k in kills for a, b in outages)
    assert kills[0] == 30
    assert all(b - a >= 30 for a, b in itertools.pairwise(kills))
    assert len(kills) >= 12  # 19 slots in 10 minutes; those near the two outages skipped
    broker = next(e for e in events if e.action == "broker_outage")
    assert broker.seconds > 10  # longer than the idle close


def test_no_store_outage_without_the_flag() -> None:
    actions = [e.action for e in chaos_schedule(180, 10, store_outage=False)]
    assert "store_outage" not in actions
    assert {"malformed", "broker_outage", "replay_history", "replay_years"} <= set(actions)


def test_the_years_series_is_monthly_and_spans_30_years(tmp_path: Path) -> None:
    rows = [
        r
        for r in CsvSource(write_years_csv(tmp_path / "y.csv"), "timestamp", "value")
        if isinstance(r, Row)
    ]
    months = {dt.datetime.fromtimestamp(r.ts_ms / 1000, dt.UTC).strftime("%Y-%m") for r in rows}
    assert len(rows) == len(months) == 360
    assert min(months) == "1995-01"
    assert max(months) == "2024-12"


def test_windows_compare_count_min_max_exactly_and_spread_within_tolerance() -> None:
    want = {("d", "T", 0): (3, 1.0, 5.0, 3.0, 1.632993161855452)}
    assert compare_windows(want, {("d", "T", 0): (3, 1.0, 5.0, 3.0, 1.6329931618554525)}) == []
    off_by_one = compare_windows(want, {("d", "T", 0): (2, 1.0, 5.0, 3.0, 1.632993161855452)})
    assert off_by_one == ["d/T@0: count 2 != 3"]
    spread = compare_windows(want, {("d", "T", 0): (3, 1.0, 5.0, 3.0, 1.6329)})
    assert spread == ["d/T@0: std 1.6329 != 1.632993161855452"]
