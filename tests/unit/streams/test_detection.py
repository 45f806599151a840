"""The detection stage glue: safety-limit alerts through the dedup, scores, restart safety.

Pure: readings go through ``ReadingsProcessor`` (real codec, real windows) with a
``DetectionStage``; no Kafka, no clock.
"""

from __future__ import annotations

from typing import Any

import pytest

from schemas import AvroCodec
from streams.alerts import AlertPolicy
from streams.detection import DetectionStage
from streams.readings import InputRecord, ReadingsProcessor

TOPIC = "telemetry.readings"
START = 1_356_998_400_000  # 2013-01-01: far in the past of the wall clock, on purpose
QUIET_MS = 60_000
HOT = 65.0  # above the 60 degC CRITICAL cell-temperature limit
NORMAL = 25.0


def reading(
    device: str,
    ts: int,
    value: float,
    *,
    capability: str = "CELL_TEMPERATURE",
    device_type: str = "BATTERY_PACK",
    quality: str = "GOOD",
) -> dict[str, Any]:
    return {
        "reading_id": f"{device}/{capability}@{ts}",
        "device_id": device,
        "device_type": device_type,
        "sensor_id": f"{device}/{capability}",
        "capability": capability,
        "value": value,
        "unit": "C",
        "timestamp": ts,
        "sequence": ts // 1000,
        "quality": quality,
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }


class Pipeline:
    """A processor with detection, fed records on one partition with growing offsets."""

    def __init__(self, stage: DetectionStage | None = None) -> None:
        self.codec = AvroCodec()
        self.stage = stage or DetectionStage(warmup=50, policy=AlertPolicy(QUIET_MS, 3_600_000))
        self.processor = ReadingsProcessor(
            self.codec,
            window_ms=10_000,
            lateness_ms=5_000,
            window_label="10s",
            detection=self.stage,
        )
        self.offset = 0

    def feed(self, readings: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], Any]:
        batch = []
        for r in readings:
            value = self.codec.encode("UniversalSensorReading", r)
            batch.append(InputRecord(TOPIC, 0, self.offset, r["device_id"].encode(), value))
            self.offset += 1
        result = self.processor.process(batch)
        # every alert record must encode as an Alert, every score as an AnomalyScore
        self.codec.encode_batch("Alert", result.detection.alerts)
        self.codec.encode_batch("AnomalyScore", result.detection.anomalies)
        return result.detection.alerts, result


def _learned(stage: DetectionStage, device: str, sensor: str = "CELL_TEMPERATURE") -> int:
    return stage.devices[("default", device)].series[f"{device}/{sensor}"].detector.n_learned


def series(device: str, start_s: int, end_s: int, value: float) -> list[dict[str, Any]]:
    return [reading(device, START + s * 1000, value) for s in range(start_s, end_s)]


def test_a_reading_above_a_safety_limit_fires_exactly_one_alert() -> None:
    p = Pipeline()
    alerts, result = p.feed([*series("bat", 0, 10, NORMAL), reading("bat", START + 10_000, HOT)])
    assert [(a["state"], a["severity"], a["version"]) for a in alerts] == [
        ("FIRING", "CRITICAL", 1)
    ]
    a = alerts[0]
    assert a["alert_key"] == "default/bat/device"  # one alert per device incident
    assert a["rule"] == "limit:CELL_TEMPERATURE:high"
    assert a["first_seen"] == a["last_seen"] == START + 10_000
    assert result.dead_letters == []  # a 2013 timestamp is not refused


def test_repeats_within_the_quiet_period_send_nothing_and_are_counted() -> None:
    p = Pipeline()
    p.feed(series("bat", 0, 10, NORMAL) + series("bat", 10, 11, HOT))
    alerts, result = p.feed(series("bat", 11, 40, HOT))
    assert alerts == []
    assert result.detection.suppressed == {"critical": 29}
    alerts, _ = p.feed(series("bat", 40, 60, NORMAL))  # quiet for 20 s < 60 s
    assert alerts == []


def test_recovery_resolves_after_the_quiet_period_in_event_time() -> None:
    p = Pipeline()
    p.feed(series("bat", 0, 10, NORMAL) + series("bat", 10, 40, HOT))
    resolved: list[dict[str, Any]] = []
    for s in range(40, 200, 7):  # batch boundaries must not matter
        alerts, _ = p.feed(series("bat", s, min(s + 7, 200), NORMAL))
        resolved += alerts
    assert [(a["state"], a["version"], a["duplicates"]) for a in resolved] == [("RESOLVED", 2, 29)]
    assert resolved[0]["resolved_at"] == START + 39_000 + QUIET_MS
    alerts, _ = p.feed(series("bat", 200, 201, HOT))  # a new incident: a new alert
    assert [(a["state"], a["version"]) for a in alerts] == [("FIRING", 1)]
    assert alerts[0]["alert_id"] != resolved[0]["alert_id"]


def test_warning_then_critical_is_one_alert_that_escalates() -> None:
    p = Pipeline()
    alerts, _ = p.feed(series("bat", 0, 5, 55.0) + series("bat", 5, 10, 62.0))
    assert [(a["state"], a["severity"], a["version"]) for a in alerts] == [
        ("FIRING", "WARNING", 1),
        ("FIRING", "CRITICAL", 2),
    ]
    assert len({a["alert_id"] for a in alerts}) == 1


def test_replay_after_restore_neither_resends_nor_double_counts() -> None:
    first = Pipeline()
    log: list[dict[str, Any]] = []
    sent, _ = first.feed(series("bat", 0, 10, NORMAL) + series("bat", 10, 30, HOT))
    log += sent
    # crash: a new stage restores the latest record per key, then the input is replayed
    restarted = Pipeline()
    latest = {a["alert_key"]: a for a in log}
    assert restarted.stage.restore(latest.values()) == 1
    sent, _ = restarted.feed(series("bat", 0, 10, NORMAL) + series("bat", 10, 40, HOT))
    assert sent == []
    sent, _ = restarted.feed(series("bat", 40, 120, NORMAL))
    assert [(a["state"], a["version"], a["duplicates"]) for a in sent] == [("RESOLVED", 2, 29)]


def test_out_of_physical_range_is_neither_alerted_nor_learned() -> None:
    p = Pipeline()
    alerts, result = p.feed(series("bat", 0, 10, NORMAL) + series("bat", 10, 12, 500.0))
    assert alerts == []
    assert result.detection.suspect == 2
    assert _learned(p.stage, "bat") == 10


def test_scores_flag_a_spike_after_warm_up_only() -> None:
    p = Pipeline(DetectionStage(warmup=100, policy=AlertPolicy(QUIET_MS, 3_600_000)))
    noisy = [
        reading("m", START + s * 1000, 3.0 + 0.1 * (s % 5), capability="VIBRATION",
                device_type="MACHINE")
        for s in range(0, 150)
    ]  # fmt: skip
    _, early = p.feed([*noisy[:50], reading("m", START + 50_500, 6.5, capability="VIBRATION",
                                              device_type="MACHINE")])  # fmt: skip
    assert early.detection.anomalies == []  # still warming up
    _, result = p.feed(noisy[51:])
    spike = reading("m", START + 150_000, 6.5, capability="VIBRATION", device_type="MACHINE")
    alerts, result = p.feed([spike])
    assert alerts == []  # 6.5 mm/s is under the 7.1 limit: a score, not an alert
    scores = result.detection.anomalies
    assert [(a["detector"], a["is_anomaly"], a["device_id"]) for a in scores] == [
        ("seasonal_zscore", True, "m")
    ]
    assert result.detection.anomaly_counts == {("seasonal_zscore", "MACHINE"): 1}


def test_suspect_quality_is_scored_but_not_learned() -> None:
    p = Pipeline()
    p.feed([reading("bat", START + s * 1000, NORMAL, quality="SUSPECT") for s in range(5)])
    assert _learned(p.stage, "bat") == 0


def test_forget_drops_the_state_of_revoked_partitions() -> None:
    p = Pipeline()
    p.feed(series("bat", 0, 10, HOT))
    p.processor.forget([(TOPIC, 0)])
    assert p.stage.alerts == {} and p.stage.devices == {} and p.stage.watermark == {}


def test_negative_sample_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="score_sample_every"):
        DetectionStage(warmup=1, score_sample_every=-1)
