"""Safety limits: a reading beyond a limit of its capability is observed at once.

No learning and no feedback: a limit is a fact about the equipment, never adapted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from streams.detect.rules import SAFETY_LIMITS, Breach, check_limits
from streams.signals.base import (
    NO_FINDINGS,
    AlertCandidate,
    DeviceState,
    Finding,
    ReadingView,
    Signal,
)

if TYPE_CHECKING:
    from streams.signals.config import DetectionConfig

__all__ = ["SafetyLimits", "limit_rule"]


def limit_rule(capability: str, breach: Breach) -> str:
    """The alert rule of a safety-limit breach: one per capability and direction.

    The WARNING and CRITICAL limits of one direction share the rule, so a value rising
    through both is one alert that escalates, not two alerts.

    >>> from streams.detect.rules import check_limits
    >>> limit_rule("CELL_TEMPERATURE", check_limits("BATTERY_PACK", "CELL_TEMPERATURE", 61.0))
    'limit:CELL_TEMPERATURE:high'
    """
    side = "high" if breach.limit.direction == "above" else "low"
    return f"limit:{capability}:{side}"


class SafetyLimits(Signal):
    """Breaches of the safety limits of ``streams.detect.rules``."""

    name: ClassVar[str] = "limits"

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        # most readings are of a capability without any limit: skip the lookups for them
        self._limited = frozenset(cap for _, cap in SAFETY_LIMITS)

    def on_reading(self, reading: ReadingView, dev: DeviceState) -> Sequence[Finding]:
        cap, value = reading.capability, reading.value
        if cap not in self._limited:
            return NO_FINDINGS
        breach = check_limits(reading.device_type, cap, value)
        if breach is None:
            return NO_FINDINGS
        return [
            AlertCandidate(
                limit_rule(cap, breach),
                breach.severity,
                reading.ts,
                cap,
                f"{cap} {value:g} breaches {breach.rule} ({breach.severity})",
            )
        ]
