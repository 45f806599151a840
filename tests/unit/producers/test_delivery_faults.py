"""Clock and delivery faults: a gateway's outage loses nothing, a skewed clock changes only time.

Each test runs a fleet beside its healthy twin (same seed, no failures). Values come from
the physics generator alone, so the twin says what every reading must be; the scenario may
only move readings in time (withheld then flushed) or stamp them with a wrong clock.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest

from producers.encoding import TickEncoder
from producers.fleet import KINDS, Fleet, FleetTick
from producers.scenarios import SCENARIOS, GatewayOutage
from producers.simulator import build_records
from schemas import AvroCodec

T0 = 1_767_225_600_000
STEP_MS = 60_000
TICKS = 90  # onset <= 45 min, + a 20-minute outage: every outage has ended


def _fleet(
    scenario: str | None, devices: int = 16, seed: int = 5, rate: float = 0.5, **kw: Any
) -> Fleet:
    rate = rate if scenario else 0.0
    return Fleet(devices, KINDS, seed=seed, scenario=scenario, failure_rate=rate, step_s=60, **kw)


def _ticks(fleet: Fleet, n: int = TICKS) -> list[FleetTick]:
    return [fleet.tick(T0 + k * STEP_MS) for k in range(n)]


def _readings(ticks: list[FleetTick]) -> list[tuple[str, str, int, float]]:
    return [
        (d, s, ts, v)
        for t in ticks
        for d, s, ts, v in zip(t.device_ids, t.sensors, t.timestamps, t.values, strict=True)
    ]


def _device_rows(tick: FleetTick, device: str) -> np.ndarray:
    return np.array([i for i, d in enumerate(tick.device_ids) if d == device], dtype=int)


def test_gateway_outage_delivers_every_reading_once_with_its_original_time() -> None:
    sick, twin = _fleet("gateway_outage"), _fleet(None)
    got, want = _ticks(sick), _ticks(twin)
    assert sick.assignments and len(sick.assignments) < len(sick.device_ids)
    assert Counter(_readings(got)) == Counter(_readings(want))  # none missing, none twice
    outage_ticks = round(SCENARIOS["gateway_outage"].duration_s / 60)  # type: ignore[operator]
    for device in sick.assignments:
        present = [len(_device_rows(t, device)) > 0 for t in got]
        silent = [k for k, p in enumerate(present) if not p]
        assert len(silent) == outage_ticks and silent == list(range(silent[0], silent[-1] + 1))
        flush = got[silent[-1] + 1]
        idx = _device_rows(flush, device)
        stamps = np.array(flush.timestamps)[idx]
        late = np.zeros(len(flush.rows), int) if flush.late_ticks is None else flush.late_ticks
        n_ch = len(sick.model_of(device).channels)
        withheld_ts = [T0 + k * STEP_MS for k in silent]
        # The flush: every withheld reading, in event-time order, then this tick's own.
        assert stamps.tolist() == sorted(stamps.tolist())
        assert (
            stamps.tolist()
            == [ts for ts in withheld_ts for _ in range(n_ch)] + [flush.ts_ms] * n_ch
        )
        assert (
            late[idx].tolist()
            == [silent[-1] + 1 - k for k in silent for _ in range(n_ch)] + [0] * n_ch
        )
        phases = [flush.labels[i]["phase"] for i in idx]  # type: ignore[index]
        assert phases == ["FAILURE"] * (n_ch * len(silent)) + ["NORMAL"] * n_ch
        for k in range(silent[0]):  # before the outage: on time, NORMAL
            t = got[k]
            assert {t.labels[i]["phase"] for i in _device_rows(t, device)} == {"NORMAL"}  # type: ignore[index]


def test_gateway_outage_leaves_healthy_devices_and_other_ticks_alone() -> None:
    sick, twin = _fleet("gateway_outage"), _fleet(None)
    for a, b in zip(_ticks(sick), _ticks(twin), strict=True):
        healthy = [i for i, d in enumerate(a.device_ids) if d not in sick.assignments]
        assert [a.sensors[i] for i in healthy] == [
            s for s, d in zip(b.sensors, b.device_ids, strict=True) if d not in sick.assignments
        ]
        assert all(a.labels[i] is None for i in healthy)
        assert all(a.timestamps[i] == a.ts_ms for i in healthy)
        if a.late_ticks is None:  # no flush in this tick: nothing is stamped off the tick
            assert a.row_ts_ms is None


def test_gateway_outage_keeps_each_reading_s_sequence_number() -> None:
    sick = _fleet("gateway_outage")
    seqs: dict[str, list[int]] = {}
    for k, tick in enumerate(_ticks(sick)):
        for r in build_records(tick, k, "default"):
            assert r["sequence"] == (r["timestamp"] - T0) // STEP_MS  # the tick that took it
            seqs.setdefault(r["sensor_id"], []).append(r["sequence"])
    assert all(sorted(s) == list(range(TICKS)) for s in seqs.values())


def test_outage_length_is_configurable() -> None:
    table = SCENARIOS | {"gateway_outage": GatewayOutage(duration_s=300)}
    sick = _fleet("gateway_outage", scenarios=table)
    ticks = _ticks(sick)
    for device in sick.assignments:
        assert sum(len(_device_rows(t, device)) == 0 for t in ticks) == 5
    assert SCENARIOS["gateway_outage"].duration_s == 1_200  # the shared table is untouched
    with pytest.raises(ValueError, match="duration_s must be a finite number > 0, got -1"):
        GatewayOutage(duration_s=-1)


def test_clock_skew_shifts_time_by_offset_plus_drift_and_nothing_else() -> None:
    sick, twin = _fleet("clock_skew", devices=40), _fleet(None, devices=40)
    offsets = []
    got = _ticks(sick)
    for a, b in zip(got, _ticks(twin), strict=True):
        # Same rows, same values, same order: only the stamps of afflicted devices move.
        assert np.array_equal(a.rows, b.rows) and np.array_equal(a.value_array, b.value_array)
        assert a.late_ticks is None
    for device in sick.assignments:
        t, err = [], []
        for tick in got:
            idx = _device_rows(tick, device)
            stamps = {tick.timestamps[i] for i in idx}
            assert len(stamps) == 1  # one clock per device: every sensor shares it
            phase = {tick.labels[i]["phase"] for i in idx}  # type: ignore[index]
            if phase == {"NORMAL"}:
                assert stamps == {tick.ts_ms}
                assert not t  # NORMAL only before the onset
            else:
                assert phase == {"FAILURE"}
                t.append(tick.ts_ms)
                err.append(stamps.pop() - tick.ts_ms)
        x = (np.array(t) - t[0]) / 60_000  # minutes since the first skewed tick
        drift, offset = np.polyfit(x, np.array(err, dtype=float), 1)
        assert np.abs(np.array(err) - (offset + drift * x)).max() <= 1.0  # ms rounding only
        assert 2_000 <= abs(offset) <= 300_000 + 60
        assert 10 - 0.5 <= abs(drift) <= 50 + 0.5
        offsets.append(offset)
    assert min(offsets) < 0 < max(offsets)  # either sign
    assert len(set(np.round(offsets))) == len(offsets)  # drawn per device


def test_clock_skew_leaves_healthy_devices_on_the_tick_time() -> None:
    sick = _fleet("clock_skew", devices=40)
    for tick in _ticks(sick, 60):
        for d, ts, lb in zip(tick.device_ids, tick.timestamps, tick.labels, strict=True):
            if d not in sick.assignments:
                assert ts == tick.ts_ms and lb is None


@pytest.mark.parametrize("scenario", ["gateway_outage", "clock_skew"])
def test_fast_encoder_writes_what_the_codec_writes_with_per_row_times(scenario: str) -> None:
    fleet = _fleet(scenario, devices=8, rate=1.0)
    codec = AvroCodec()
    enc = TickEncoder(fleet, codec)
    checked = 0
    for k, tick in enumerate(_ticks(fleet)):
        if tick.row_ts_ms is None and tick.late_ticks is None:
            continue
        keys, values = enc.encode(tick, k)
        records = build_records(tick, k, "default")
        assert values == codec.encode_batch("UniversalSensorReading", records)
        assert keys == [r["device_id"].encode() for r in records]
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("scenario", ["gateway_outage", "clock_skew"])
def test_same_seed_same_bytes(scenario: str) -> None:
    def run(seed: int) -> list[bytes]:
        fleet = _fleet(scenario, seed=seed)
        enc = TickEncoder(fleet, AvroCodec())
        return [v for k, t in enumerate(_ticks(fleet)) for v in enc.encode(t, k)[1]]

    first = run(5)
    assert first == run(5)
    assert first != run(6)


def test_delivery_faults_only_afflict_devices_when_named() -> None:
    mixed = Fleet(200, KINDS, seed=1, failure_rate=1.0)
    assert set(mixed.assignments.values()) == {
        n for n, s in SCENARIOS.items() if s.in_random_mix
    } and not {"gateway_outage", "clock_skew"} & set(mixed.assignments.values())
    named = Fleet(20, KINDS, seed=1, scenario="clock_skew", failure_rate=1.0)
    assert set(named.assignments.values()) == {"clock_skew"} and len(named.assignments) == 20


def test_fast_encoder_handles_stamps_of_any_length_and_late_sequences() -> None:
    fleet = _fleet(None, devices=4)
    codec = AvroCodec()
    enc = TickEncoder(fleet, codec)
    tick = fleet.tick(10_000)
    n = len(tick.rows)
    tick.row_ts_ms = np.array([5, 99_999, 10_000, 10**13 + 7] * n, dtype=np.int64)[:n]
    tick.late_ticks = np.arange(n, dtype=np.int64) % 3
    values = enc.encode(tick, 40)[1]
    records = build_records(tick, 40, "default")
    assert values == codec.encode_batch("UniversalSensorReading", records)
    assert [r["sequence"] for r in records[:4]] == [40, 39, 38, 40]
    assert records[1]["reading_id"].endswith("@99999") and records[1]["timestamp"] == 99_999
