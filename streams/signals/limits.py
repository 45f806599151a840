"""Safety limits: a reading beyond a limit of its capability is observed at once.

No learning and no feedback: a limit is a fact about the equipment, never adapted.
"""

from __future__ import annotations

from typing import ClassVar

from streams.detect.rules import Breach, check_limits
from streams.signals.base import AlertCandidate, DeviceState, Finding, ReadingView, Signal

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

    def on_reading(self, reading: ReadingView, dev: DeviceState) -> list[Finding]:
        cap, value = reading.capability, reading.value
        breach = check_limits(reading.device_type, cap, value)
        if breach is None:
            return []
        return [
            AlertCandidate(
                limit_rule(cap, breach),
                breach.severity,
                reading.ts,
                cap,
                f"{cap} {value:g} breaches {breach.rule} ({breach.severity})",
            )
        ]
