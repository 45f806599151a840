"""The metrics contract: names with units, bounded labels, histogram resolution, and the
worker's housekeeping gauges (silent devices, consumer lag)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry, generate_latest

from core.metrics import LATENCY_BUCKETS, PipelineMetrics
from streams.health import LastSeen
from streams.readings import InputRecord
from tests.unit.streams.test_worker_commits import TOPIC, make_worker, reading

# Every label the pipeline may use, each with a bounded set of values. No device ids.
BOUNDED_LABELS = {"reason", "topic", "partition", "table", "detector", "device_type",
                  "severity", "outcome", "action"}  # fmt: skip
CONTRACT = [
    "envirostream_readings_consumed_total",
    "envirostream_records_dead_lettered_total",
    "envirostream_consumer_lag_records",
    "envirostream_event_to_sink_latency_seconds",
    "envirostream_windows_emitted_total",
    "envirostream_anomalies_total",
    "envirostream_alerts_firing",
    "envirostream_duplicate_alerts_suppressed_total",
    "envirostream_sink_rows_total",
    "envirostream_sink_errors_total",
    "envirostream_sink_batch_duration_seconds",
    "envirostream_devices_silent",
]
UNITS = ("_total", "_seconds", "_bytes", "_records", "_created")


def families() -> dict[str, tuple[str, set[str]]]:
    metrics = PipelineMetrics(CollectorRegistry())
    metrics.event_to_sink.observe_many("readings", np.array([0.1]))
    out = {}
    for family in metrics.registry.collect():
        labels = {k for s in family.samples for k in s.labels if k != "le"}
        name = family.name + ("_total" if family.type == "counter" else "")
        out[name] = (family.type, labels)
    return out


def test_contract_metrics_exist() -> None:
    assert set(CONTRACT) <= set(families())


@pytest.mark.parametrize("name", sorted(families()))
def test_names_carry_units_or_counted_things_and_labels_are_bounded(name: str) -> None:
    kind, labels = families()[name]
    assert name.startswith("envirostream_")
    if kind in {"counter", "histogram"}:
        assert name.endswith(UNITS), name
    assert labels <= BOUNDED_LABELS, labels - BOUNDED_LABELS


def test_latency_buckets_resolve_10ms_and_10min() -> None:
    assert 0.01 in LATENCY_BUCKETS and 600 in LATENCY_BUCKETS
    metrics = PipelineMetrics(CollectorRegistry())
    metrics.event_to_sink.observe_many("readings", np.array([0.004, 0.009, 599.0, 601.0]))
    text = generate_latest(metrics.registry).decode()
    assert (
        'envirostream_event_to_sink_latency_seconds_bucket{le="0.01",table="readings"} 2.0' in text
    )
    assert (
        'envirostream_event_to_sink_latency_seconds_bucket{le="600.0",table="readings"} 3.0' in text
    )


def test_last_seen_counts_silent_devices_and_forgets_revoked_partitions() -> None:
    seen = LastSeen()
    seen.update(("t", 0), [b"a", b"b", None], now=0.0)
    seen.update(("t", 1), [b"c"], now=50.0)
    seen.update(("t", 0), [b"a"], now=90.0)
    assert (seen.silent(now=100.0, after=60.0), len(seen)) == (1, 3)
    seen.forget([("t", 0)])
    assert (seen.silent(now=200.0, after=60.0), len(seen)) == (1, 1)


class FailingProbe:
    def lag(self) -> dict[tuple[str, int], int]:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT))


class FixedProbe:
    def lag(self) -> dict[tuple[str, int], int]:
        return {(TOPIC, 0): 7, (TOPIC, 1): 0}


def value(metrics: PipelineMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_worker_samples_silent_devices_and_lag() -> None:
    worker, _, _, _ = make_worker(silent_device_seconds=0.000001)
    worker.lag_probe = FixedProbe()  # type: ignore[assignment]
    batch = [InputRecord(TOPIC, 0, i, d, reading(worker.codec, d.decode(), 1000))
             for i, d in enumerate([b"d1", b"d2", b"d1"])]  # fmt: skip
    asyncio.run(worker.on_readings(batch))
    asyncio.run(worker.sample_health())
    m = worker.metrics
    assert value(m, "envirostream_devices_known") == 2
    assert value(m, "envirostream_devices_silent") == 2
    assert value(m, "envirostream_consumer_lag_records", topic=TOPIC, partition="0") == 7


def test_lag_probe_failure_is_counted_not_raised() -> None:
    worker, _, _, _ = make_worker()
    worker.lag_probe = FailingProbe()  # type: ignore[assignment]
    asyncio.run(worker.sample_health())
    assert value(worker.metrics, "envirostream_consumer_lag_probe_errors_total") == 1
