"""The pipeline's topics: names, partitions, retention and cleanup policy."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.settings import Settings

__all__ = [
    "AGGREGATES",
    "ALERTS",
    "ALERTS_FEEDBACK",
    "ANOMALIES",
    "DLQ",
    "READINGS",
    "TopicSpec",
    "detector_state_topic",
    "topic_specs",
]

READINGS = "telemetry.readings"
AGGREGATES = "telemetry.aggregates"
ANOMALIES = "telemetry.anomalies"
ALERTS = "telemetry.alerts"
ALERTS_FEEDBACK = "telemetry.alerts.feedback"
DLQ = "telemetry.dlq"


@dataclass(frozen=True)
class TopicSpec:
    """What a topic must look like; ``config`` holds broker topic configs as strings."""

    name: str
    partitions: int
    replication: int
    config: dict[str, str] = field(default_factory=dict)

    @property
    def retention_ms(self) -> int | None:
        value = self.config.get("retention.ms")
        return int(value) if value is not None else None


def _hours_ms(hours: float) -> str:
    return str(round(hours * 3_600_000))


def detector_state_topic(settings: Settings) -> str:
    """The compacted changelog of the learned detector state (one record per device).

    Named after the worker group (``ENVIROSTREAM_APP_ID``) like a Faust table's changelog:
    two pipelines sharing a broker keep their models apart. Partition ``p`` holds the
    devices whose readings are on ``telemetry.readings`` partition ``p``.
    """
    return f"{settings.app_id}-detector-state-changelog"


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """Every topic the pipeline uses, sized from the settings."""
    parts, repl = settings.topic_partitions, settings.topic_replication
    raw = {"retention.ms": _hours_ms(settings.readings_retention_hours), "cleanup.policy": "delete"}
    derived = {
        "retention.ms": _hours_ms(settings.derived_retention_hours),
        "cleanup.policy": "delete",
    }
    return [
        TopicSpec(READINGS, parts, repl, raw),
        TopicSpec(AGGREGATES, parts, repl, derived),
        TopicSpec(ANOMALIES, parts, repl, derived),
        TopicSpec(ALERTS, parts, repl, derived),
        # Keyed by device_id and partitioned like the readings: the worker that owns a
        # device's readings partition gets its feedback (range assignment).
        TopicSpec(ALERTS_FEEDBACK, parts, repl, derived),
        # Dead letters are kept as long as derived data: someone has to look at them.
        TopicSpec(DLQ, 1, repl, derived),
        # Compacted: the latest model state per device is kept however old it is.
        TopicSpec(
            detector_state_topic(settings),
            parts,
            repl,
            {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"},
        ),
    ]
