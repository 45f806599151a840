"""Topic definitions and the admin that creates and verifies them."""

from topics.admin import TopicAdmin, TopicDrift, TopicState
from topics.definitions import (
    AGGREGATES,
    ALERTS,
    ALERTS_FEEDBACK,
    ANOMALIES,
    DLQ,
    READINGS,
    TopicSpec,
    detector_state_topic,
    topic_specs,
)

__all__ = [
    "AGGREGATES",
    "ALERTS",
    "ALERTS_FEEDBACK",
    "ANOMALIES",
    "DLQ",
    "READINGS",
    "TopicAdmin",
    "TopicDrift",
    "TopicSpec",
    "TopicState",
    "detector_state_topic",
    "topic_specs",
]
