"""Operator feedback (``telemetry.alerts.feedback``): ACK or FALSE_POSITIVE on an alert.

:class:`FeedbackIntake` decodes ``AlertFeedback`` records and applies them to the alerts
this worker holds (the detection stage); bad records become dead letters. It remembers the
next offset per partition; the worker commits it only after the resulting alert records
and (for a false positive) the raised thresholds' checkpoint are on Kafka, so a crash
replays the feedback — applying it twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from core.metrics import PipelineMetrics
from core.records import Source
from schemas import AvroCodec, DecodeError
from streams.detection import DetectionStage
from streams.records import DeadLetter, InputRecord
from streams.signals.base import DeviceKey

__all__ = ["FEEDBACK_KINDS", "FeedbackIntake", "FeedbackResult"]

log = logging.getLogger(__name__)

FEEDBACK = "AlertFeedback"
FEEDBACK_KINDS = {"ACK": "ack", "FALSE_POSITIVE": "false_positive"}


@dataclass
class FeedbackResult:
    dead_letters: list[DeadLetter] = field(default_factory=list)
    raised: set[DeviceKey] = field(default_factory=set)  # thresholds raised by false positives

    @property
    def thresholds_changed(self) -> bool:
        return bool(self.raised)


class FeedbackIntake:
    """Applies operator feedback to the detection stage and tracks the offsets read."""

    def __init__(
        self, codec: AvroCodec, detection: DetectionStage, metrics: PipelineMetrics
    ) -> None:
        self.codec = codec
        self.detection = detection
        self.metrics = metrics
        self.next_offset: dict[Source, int] = {}  # next feedback offset to commit

    def apply(self, batch: Sequence[InputRecord]) -> FeedbackResult:
        result = FeedbackResult()
        decoded = self.codec.decode_batch(FEEDBACK, [r.value or b"" for r in batch])
        for rec, item in zip(batch, decoded, strict=True):
            self.next_offset[rec.source] = rec.offset + 1
            if isinstance(item, DecodeError):
                result.dead_letters.append(DeadLetter(rec, item.reason, str(item), "feedback"))
                continue
            kind = FEEDBACK_KINDS.get(str(item["action"]))
            if kind is None:
                detail = f"unknown feedback action {item['action']!r}"
                result.dead_letters.append(DeadLetter(rec, "invalid_feedback", detail, "feedback"))
                continue
            found = self.detection.feedback(str(item["alert_id"]), kind, item["timestamp"])
            self.metrics.alert_feedback.labels(kind, "applied" if found else "unknown_alert").inc()
            if found and kind == "false_positive":
                device = self.detection.book.device_of(str(item["alert_id"]))
                if device is not None:
                    result.raised.add(device)
            if not found:
                log.warning(
                    "feedback %s for alert %s: no such alert held by this worker",
                    kind,
                    item["alert_id"],
                )
        return result

    def forget(self, sources: Iterable[Source]) -> None:
        for source in sources:
            self.next_offset.pop(source, None)
