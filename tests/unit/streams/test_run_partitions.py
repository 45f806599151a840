"""The worker's start-up warns about topics with fewer partitions, and never fails on it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from confluent_kafka import KafkaException

from core.settings import load_settings
from streams.run import _warn_partition_drift
from topics.admin import TopicDrift


class FakeAdmin:
    def __init__(self, result: list[TopicDrift] | Exception) -> None:
        self.result = result

    def drift(self, specs: Any) -> list[TopicDrift]:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def test_a_topic_with_fewer_partitions_is_logged_with_why_it_is_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    admin = FakeAdmin(
        [
            TopicDrift("telemetry.readings", "partitions", "12", "4"),
            TopicDrift("telemetry.dlq", "retention.ms", "1", "2"),  # not this warning's job
        ]
    )
    with caplog.at_level(logging.INFO, logger="streams.run"):
        _warn_partition_drift(admin, load_settings({}))  # type: ignore[arg-type]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "telemetry.readings: partitions is 4, expected 12" in warnings[0]
    assert "at most 4 workers" in warnings[0] and "docs/scaling.md" in warnings[0]


def test_a_failed_look_up_costs_only_the_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="streams.run"):
        _warn_partition_drift(FakeAdmin(KafkaException("down")), load_settings({}))  # type: ignore[arg-type]
    assert [r.levelno for r in caplog.records] == [logging.INFO]
