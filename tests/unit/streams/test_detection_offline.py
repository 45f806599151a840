"""DEVICE_OFFLINE: a silent device raises one alert, resolved when it sends again.

Pure: readings go to ``DetectionStage.observe`` (event time) and the wall clock to
``DetectionStage.silence`` (seconds), as the worker's housekeeping tick gives it.
"""

from __future__ import annotations

from typing import Any

from producers.fleet import Fleet
from producers.simulator import build_records
from streams.alerts import AlertPolicy
from streams.detection import DetectionConfig, DetectionStage
from streams.signals.offline import MIN_STEPS, OfflineWatch

SEC = 1_000
MIN = 60 * SEC
HOUR = 60 * MIN
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SRC = ("telemetry.readings", 0)
DEVICE = ("default", "m1")


def _reading(i: int, step_ms: int = MIN, seq: int | None = None) -> dict[str, Any]:
    ts = START + i * step_ms
    return {
        "reading_id": f"m1@{ts}",
        "device_id": "m1",
        "device_type": "MACHINE",
        "sensor_id": "m1/t",
        "capability": "BEARING_TEMPERATURE",
        "value": 50.0 + (i % 7) * 0.1,
        "timestamp": ts,
        "sequence": i if seq is None else seq,
        "quality": "GOOD",
        "tenant_id": "default",
    }


def _stage(**config: Any) -> DetectionStage:
    cfg = DetectionConfig(**{"warmup": 200, "offline_min_ms": 60 * SEC, **config})
    return DetectionStage(cfg, policy=AlertPolicy(quiet_period_ms=HOUR))


def _offline(alerts: list[dict[str, Any]]) -> list[tuple[str, int, int | None]]:
    return [
        (a["state"], a["first_seen"], a["resolved_at"])
        for a in alerts
        if a["rule"] == "DEVICE_OFFLINE"
    ]


def test_a_silent_device_raises_one_alert_and_resolves_when_it_sends_again() -> None:
    stage = _stage()
    for i in range(20):  # one reading a minute of event time
        stage.observe(SRC, _reading(i))
    stage.silence(1_000.0)  # heard from: the clock stamps it
    last_ts = START + 19 * MIN
    alerts: list[dict[str, Any]] = []
    for now in (1_599.0, 1_600.0, 1_700.0, 5_000.0, 9_000.0):  # limit 10 x 60 s = 600 s
        stage.silence(now)
        alerts += stage.take().alerts
        if now == 1_599.0:
            assert alerts == []
    assert _offline(alerts) == [("FIRING", last_ts, None)]
    assert alerts[0]["alert_key"] == "default/m1/offline"
    assert alerts[0]["attributes"]["usual_interval_s"] == "60"
    assert alerts[0]["attributes"]["silent_s"] == "600"
    stage.observe(SRC, _reading(20))  # back
    back = stage.take().alerts
    assert _offline(back) == [("RESOLVED", last_ts, START + 20 * MIN)]
    assert back[0]["alert_id"] == alerts[0]["alert_id"] and back[0]["version"] == 2
    assert stage.book.offline == {}
    stage.observe(SRC, _reading(21))
    stage.silence(9_001.0)
    assert stage.take().alerts == []  # one RESOLVED, nothing more


def test_the_limit_is_the_devices_own_interval_times_the_factor_with_a_floor() -> None:
    slow, fast = _stage(offline_factor=5), _stage(offline_factor=5)
    for i in range(10):
        slow.observe(SRC, _reading(i, step_ms=30 * SEC))  # 5 x 30 s = 150 s
        fast.observe(SRC, _reading(i, step_ms=2 * SEC))  # 5 x 2 s = 10 s < the 60 s floor
    for stage in (slow, fast):
        stage.silence(0.0)
    for now in (59.0, 149.0):
        slow.silence(now)
        fast.silence(now)
        if now == 59.0:
            assert slow.take().alerts == [] and fast.take().alerts == []
    assert slow.take().alerts == []
    assert len(_offline(fast.take().alerts)) == 1  # at 60 s: the floor
    slow.silence(150.0)
    assert len(_offline(slow.take().alerts)) == 1


def test_no_rhythm_no_alert_and_factor_zero_is_off() -> None:
    young, off = _stage(), _stage(offline_factor=0)
    for i in range(MIN_STEPS):  # MIN_STEPS readings = one step too few
        young.observe(SRC, _reading(i))
    for i in range(50):
        off.observe(SRC, _reading(i))
    for stage in (young, off):
        stage.silence(0.0)
        stage.silence(86_400.0)
        assert stage.take().alerts == []
    assert off.offline.rhythm == {}


def test_the_quiet_period_does_not_resolve_an_offline_alert() -> None:
    stage = _stage()
    for i in range(20):
        stage.observe(SRC, _reading(i))
    stage.silence(0.0)
    stage.silence(600.0)
    assert _offline(stage.take().alerts)[0][0] == "FIRING"
    stage.idle(SRC, 10 * HOUR)  # the partition's watermark runs far past the quiet period
    assert stage.take().alerts == []
    assert "default/m1/offline" in stage.open_alerts


def test_after_a_restart_replayed_readings_neither_resolve_nor_reopen_it() -> None:
    first = _stage()
    for i in range(20):
        first.observe(SRC, _reading(i))
    first.silence(0.0)
    first.silence(600.0)
    fired = first.take().alerts
    # a new worker: the alert comes back from telemetry.alerts, the readings are replayed
    second = _stage()
    assert second.restore(fired) == 1
    for i in range(20):
        second.observe(SRC, _reading(i))
    second.silence(1_000.0)
    second.silence(2_000.0)  # silent again for 1,000 s: the same silence, already alerted
    assert second.take().alerts == []
    assert second.book.offline == {DEVICE: "default/m1/offline"}
    second.observe(SRC, _reading(20))
    assert _offline(second.take().alerts) == [("RESOLVED", START + 19 * MIN, START + 20 * MIN)]


def test_the_usual_interval_is_a_median_that_a_lost_tick_or_an_outage_hardly_moves() -> None:
    watch = OfflineWatch(DetectionConfig())
    ts = [i * MIN for i in range(40)]
    ts = [t for t in ts if t not in (10 * MIN, 11 * MIN)]  # two ticks lost
    ts.append(ts[-1] + 5 * HOUR)  # and a five-hour outage
    for t in ts:
        watch.observe(DEVICE, t)
    interval = watch.interval_ms(DEVICE)
    assert interval is not None
    assert MIN <= interval <= MIN * 1.05**2  # at most two 5 % steps up


def _outage_fleet() -> Fleet:
    # one machine whose gateway loses its uplink for 20 minutes, 6-7 hours in
    return Fleet(
        1,
        ["machine"],
        seed=3,
        scenario="gateway_outage",
        failure_rate=1.0,
        step_s=60,
        onset_delay_s=6 * 3600,
    )


def test_a_gateway_flush_resolves_the_alert_and_raises_no_other() -> None:
    fleet = _outage_fleet()
    stage = _stage(window_warmup=30, window_min_learned=30)
    alerts: list[dict[str, Any]] = []
    flushed = 0
    for k in range(9 * 60):  # 9 h, one tick a minute; the wall clock keeps event time
        ts = START + k * MIN
        tick = fleet.tick(ts)
        records = build_records(tick, k, "default")
        if any(r["timestamp"] < ts for r in records):
            flushed += sum(r["timestamp"] < ts for r in records)
        for r in records:
            stage.observe(SRC, r)
        stage.tick([SRC])
        stage.silence(ts / 1000)
        alerts += stage.take().alerts
    assert flushed > 0, "the outage never ended in a flush"
    offline = _offline(alerts)
    assert [s for s, _, _ in offline] == ["FIRING", "RESOLVED"]
    (_, first_seen, _), (_, _, resolved_at) = offline
    assert resolved_at == first_seen + MIN  # the first buffered reading, its original time
    others = [(a["rule"], a["state"]) for a in alerts if a["rule"] != "DEVICE_OFFLINE"]
    assert others == []  # no gap, no anomaly, no window alert from the burst
    dev = stage.devices[("default", fleet.device_ids[0])]
    assert all(s.detector.is_warm for s in dev.series.values() if s.detector.warmup <= 200)
