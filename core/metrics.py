"""Prometheus metrics of the pipeline, on an injected registry (no global state).

Label sets are bounded: never a label per device. ``BulkHistogram`` observes whole
batches with numpy, so a latency per stored row costs microseconds per batch, not per row.

Every labelled series whose label values are known in advance is exported at 0 from the
start, so ``rate()`` and absence-based alert rules work from the first scrape rather than
from the first event. The closed sets this module owns (severities, feedback actions,
forwarding outcomes) are defined here; those owned by upper floors (the sink's tables, the
dead-letter reasons) are passed in by the process that builds the metrics.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "CHECKPOINT_REJECTIONS",
    "LATENCY_BUCKETS",
    "SEVERITIES",
    "BulkHistogram",
    "PipelineMetrics",
]

# Label values of ``severity`` (the Alert record's Severity enum, lower case).
SEVERITIES = ("info", "warning", "critical")

# Label values of ``reason`` of refused detector-state changelog records: not compressed
# JSON of a device state (e.g. an old pickled record); another format version; a field
# missing or of the wrong type.
CHECKPOINT_REJECTIONS = ("undecodable", "version", "invalid")

# Resolves both 10 ms and 10 minutes (and a day, for replays of old data). Quarter
# seconds from 0.5 to 2 s resolve the real-time target of a p99 under 2 s (`envirostream
# bench soak`): with only 1.5 and 2, a fleet whose older tick waits ~1.6 s put half its
# readings in (1.5, 2] and the interpolated p99 read ~1.98 s against 1.66 s measured.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 5, 10, 30,
    60, 120, 300, 600, 1800, 3600, 86400,
)  # fmt: skip


class BulkHistogram(Collector):
    """A histogram with one label (``table``) fed by arrays of observations."""

    def __init__(
        self, name: str, doc: str, label: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name, self.doc, self.label = name, doc, label
        self.edges = np.asarray(buckets, dtype=float)
        self._lock = threading.Lock()
        self._counts: dict[str, np.ndarray] = {}
        self._sums: dict[str, float] = {}
        registry.register(self)

    def start(self, label_value: str) -> None:
        """Export the series of ``label_value`` with no observations yet (all zero)."""
        with self._lock:
            self._start(label_value)

    def _start(self, label_value: str) -> None:
        if label_value not in self._counts:
            self._counts[label_value] = np.zeros(len(self.edges) + 1, dtype=np.int64)
            self._sums[label_value] = 0.0

    def observe_many(self, label_value: str, values: np.ndarray) -> None:
        if values.size == 0:
            return
        idx = np.searchsorted(self.edges, values, side="left")
        counts = np.bincount(idx, minlength=len(self.edges) + 1)
        with self._lock:
            self._start(label_value)
            self._counts[label_value] += counts
            self._sums[label_value] += float(values.sum())

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.doc, labels=[self.label])
        with self._lock:
            for value, counts in self._counts.items():
                cumulative = np.cumsum(counts)
                buckets = [
                    (repr(float(e)), int(c)) for e, c in zip(self.edges, cumulative, strict=False)
                ]
                buckets.append(("+Inf", int(cumulative[-1])))
                family.add_metric([value], buckets, self._sums[value])
        yield family

    def describe(self) -> Iterable[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.doc, labels=[self.label])


class PipelineMetrics:
    """The worker's and sinks' metrics (names fixed by the architecture contract).

    ``tables`` (the ClickHouse tables the sinks write) and ``dead_letter_reasons`` (every
    reason a record can be dead-lettered with) name the series to export at 0 from the
    start; a value outside them still gets its series on first use.

    >>> from prometheus_client import generate_latest
    >>> metrics = PipelineMetrics(CollectorRegistry(), tables=["readings"])
    >>> 'envirostream_sink_errors_total{table="readings"} 0.0' in generate_latest(
    ...     metrics.registry
    ... ).decode()
    True
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        tables: Iterable[str] = (),
        dead_letter_reasons: Iterable[str] = (),
    ) -> None:
        self.registry = registry
        p = "envirostream_"
        self.readings_consumed = Counter(
            p + "readings_consumed", "Readings read from telemetry.readings.", registry=registry
        )
        self.dead_lettered = Counter(
            p + "records_dead_lettered",
            "Records sent to telemetry.dlq, by reason.",
            ["reason"],
            registry=registry,
        )
        self.late_readings = Counter(
            p + "late_readings",
            "Readings whose window their device had already emitted (stored raw all the same).",
            registry=registry,
        )
        self.readings_rekeyed = Counter(
            p + "readings_rekeyed",
            "Readings found on another partition than their device's (null key, or another "
            "partitioner than murmur2) and moved to it.",
            registry=registry,
        )
        self.rekeyed_duplicates = Counter(
            p + "rekeyed_duplicates",
            "Re-keyed readings received twice (re-sent after a crash), counted once.",
            registry=registry,
        )
        self.windows_emitted = Counter(
            p + "windows_emitted", "Closed windows sent to telemetry.aggregates.", registry=registry
        )
        self.windows_corrected = Counter(
            p + "windows_corrected",
            "Window aggregates re-emitted, recomputed after late readings were stored.",
            registry=registry,
        )
        self.windows_open = Gauge(
            p + "windows_open", "Windows currently open in this worker.", registry=registry
        )
        self.consumer_lag = Gauge(
            p + "consumer_lag_records",
            "Records between the committed offset and the log end, per partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self.sink_rows = Counter(
            p + "sink_rows", "Rows written to ClickHouse.", ["table"], registry=registry
        )
        self.sink_errors = Counter(
            p + "sink_errors", "Failed ClickHouse inserts.", ["table"], registry=registry
        )
        self.sink_up = Gauge(
            p + "sink_up",
            "1 while the store accepts inserts; 0 while they fail and are retried with backoff.",
            registry=registry,
        )
        self.sink_up.set(1)
        self.sink_retries = Counter(
            p + "sink_retries",
            "Inserts attempted again after a failure (the store unreachable or refusing).",
            ["table"],
            registry=registry,
        )
        self.input_paused = Gauge(
            p + "input_paused",
            "1 while the worker stops fetching input because ENVIROSTREAM_SINK_MAX_BUFFERED_ROWS "
            "rows wait for the store.",
            registry=registry,
        )
        self.sink_batch_duration = Histogram(
            p + "sink_batch_duration_seconds",
            "Time to insert one batch into ClickHouse.",
            ["table"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2, 2.5, 5, 10, 30),
            registry=registry,
        )
        self.event_to_sink = BulkHistogram(
            p + "event_to_sink_latency_seconds",
            "Event time to the moment the row was stored in ClickHouse.",
            "table",
            LATENCY_BUCKETS,
            registry,
        )
        self.lag_probe_errors = Counter(
            p + "consumer_lag_probe_errors",
            "Failed reads of the broker's offsets for the consumer-lag gauge.",
            registry=registry,
        )
        # Fleet health: counts only (per-device health is in ClickHouse).
        self.devices_known = Gauge(
            p + "devices_known", "Devices this worker has seen a reading from.", registry=registry
        )
        self.devices_silent = Gauge(
            p + "devices_silent",
            "Known devices without a reading for ENVIROSTREAM_SILENT_DEVICE_SECONDS.",
            registry=registry,
        )
        # Fed by the detection stage (anomalies, alert lifecycle) and the Alertmanager sink.
        self.anomalies = Counter(
            p + "anomalies",
            "Anomalies detected, by detector and device type.",
            ["detector", "device_type"],
            registry=registry,
        )
        self.alerts_firing = Gauge(
            p + "alerts_firing",
            "Device alerts currently firing, by severity.",
            ["severity"],
            registry=registry,
        )
        self.alerts_suppressed = Counter(
            p + "duplicate_alerts_suppressed",
            "Repeats of a firing alert folded into it instead of re-sent, by severity.",
            ["severity"],
            registry=registry,
        )
        self.alerts_forwarded = Counter(
            p + "alertmanager_alerts_forwarded",
            "Device alerts posted to Alertmanager, by outcome (sent, failed after retries).",
            ["outcome"],
            registry=registry,
        )
        self.alertmanager_retries = Counter(
            p + "alertmanager_retries",
            "Retried posts to Alertmanager (unreachable or 5xx).",
            registry=registry,
        )
        self.alert_feedback = Counter(
            p + "alert_feedback",
            "Operator feedback records from telemetry.alerts.feedback, by action (ack, "
            "false_positive) and outcome (applied; unknown_alert: no such alert held here).",
            ["action", "outcome"],
            registry=registry,
        )
        self.detector_checkpoints = Counter(
            p + "detector_checkpoint_records",
            "Per-device detector states written to the detector-state changelog.",
            registry=registry,
        )
        self.detector_checkpoint_bytes = Counter(
            p + "detector_checkpoint_bytes",
            "Bytes of detector state written to the detector-state changelog.",
            registry=registry,
        )
        self.detector_restored = Counter(
            p + "detector_states_restored",
            "Per-device detector states loaded from the changelog on partition assignment.",
            registry=registry,
        )
        self.checkpoints_rejected = Counter(
            p + "checkpoints_rejected",
            "Detector-state changelog records refused on load, by reason (undecodable, "
            "version, invalid); those devices warm up again.",
            ["reason"],
            registry=registry,
        )
        for reason in CHECKPOINT_REJECTIONS:
            self.checkpoints_rejected.labels(reason)
        for action in ("ack", "false_positive"):
            for fb_outcome in ("applied", "unknown_alert"):
                self.alert_feedback.labels(action, fb_outcome)
        for severity in SEVERITIES:
            self.alerts_firing.labels(severity)
            self.alerts_suppressed.labels(severity)
        for outcome in ("sent", "failed"):
            self.alerts_forwarded.labels(outcome)
        for table in tables:
            self.sink_rows.labels(table)
            self.sink_errors.labels(table)
            self.sink_retries.labels(table)
            self.sink_batch_duration.labels(table)
            self.event_to_sink.start(table)
        for reason in dead_letter_reasons:
            self.dead_lettered.labels(reason)
