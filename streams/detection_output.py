"""What the detection stage produced for one batch: records to send and counts for metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DetectionOutput"]


@dataclass
class DetectionOutput:
    """What one batch produced, and the counts for the metrics."""

    anomalies: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    anomaly_counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    suppressed: Counter[str] = field(default_factory=Counter)  # by severity (lower case)
    suspect: int = 0
