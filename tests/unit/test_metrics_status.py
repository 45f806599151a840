"""`envirostream status`: parsing real /metrics text and the summary it renders."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from core.metrics import PipelineMetrics
from core.settings import load_settings
from envirostream.status import Sample, histogram_quantile, parse_metrics, render


def exposition(consumed: int, latencies: list[float]) -> str:
    m = PipelineMetrics(CollectorRegistry())
    m.readings_consumed.inc(consumed)
    m.dead_lettered.labels("decode_error").inc(3)
    m.sink_rows.labels("readings").inc(consumed)
    m.consumer_lag.labels("telemetry.readings", "0").set(40)
    m.consumer_lag.labels("telemetry.readings", "1").set(2)
    m.alerts_firing.labels("critical").set(2)
    m.devices_known.set(100)
    m.devices_silent.set(7)
    m.event_to_sink.observe_many("readings", np.asarray(latencies))
    return generate_latest(m.registry).decode()


def test_summary_has_rates_lag_dead_letters_latency_alerts_and_silent_devices() -> None:
    settings = load_settings({}, metrics_port=9999)
    prev = parse_metrics(exposition(1000, [0.02] * 10), at=100.0)
    cur = parse_metrics(exposition(3000, [0.02] * 10 + [0.3] * 90), at=102.0)
    text = "\n".join(render(cur, prev, {"up": True, "rows": {"readings": 5}}, settings))
    assert "worker :9999 up" in text
    assert "readings   1,000/s" in text  # (3000 - 1000) / 2 s
    assert "telemetry.readings 42 records" in text
    assert "decode_error 3" in text
    # The last interval's 90 observations, all in (0.25, 0.5]: p50 ≈ 0.375 s.
    assert "readings   event→sink p50 375 ms" in text
    assert "critical 2" in text
    assert "silent 7 of 100 known" in text
    assert "readings 5" in text


def test_worker_down_is_shown_not_raised() -> None:
    settings = load_settings({}, metrics_port=9999)
    text = "\n".join(render(Sample(at=1.0), None, {"up": False, "rows": {}}, settings))
    assert "NOT ANSWERING" in text and "p99 -" in text


def test_histogram_quantile_matches_prometheus_interpolation() -> None:
    assert histogram_quantile(0.5, {}) is None
    assert histogram_quantile(0.5, {1.0: 0, float("inf"): 0}) is None
    assert histogram_quantile(0.75, {1.0: 50, 2.0: 100, float("inf"): 100}) == 1.5
    assert histogram_quantile(0.99, {1.0: 0, float("inf"): 10}) == 1.0
