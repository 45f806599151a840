"""Static rules: physical ranges (bad input) and safety limits (alerts with no learning).

* ``PHYSICAL_RANGES``: a value outside its capability's physical range cannot be a real
  measurement; the reading is SUSPECT: stored, but kept out of model learning and scoring.
  GENERIC (meaning unknown) and capabilities missing from the table have no range.
* ``SAFETY_LIMITS``: per (device type, capability), a breach raises an alert at once.
  ``"*"`` as device type applies to every kind. The most severe breached limit wins.
* ``assess_reading``: the bad-input rules on one reading (documented in docs/detection.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MAX_FUTURE_MS",
    "MAX_PAST_MS",
    "OPERATING_STATE",
    "PHYSICAL_RANGES",
    "SAFETY_LIMITS",
    "STATE_CAPABILITIES",
    "Breach",
    "Limit",
    "assess_reading",
    "check_limits",
    "in_physical_range",
    "value_verdict",
]

Severity = Literal["INFO", "WARNING", "CRITICAL"]
SEVERITY_RANK: dict[str, int] = {"INFO": 0, "WARNING": 1, "CRITICAL": 2}

PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    "TEMPERATURE": (-80.0, 100.0),
    "CABIN_TEMPERATURE": (-80.0, 100.0),
    "HUMIDITY": (0.0, 100.0),
    "VOC": (0.0, 1e6),
    "PARTICULATES": (0.0, 1e5),
    "ACOUSTIC_LEVEL": (0.0, 200.0),
    "VIBRATION": (0.0, 1_000.0),
    "VIBRATION_PEAK": (0.0, 5_000.0),
    "HOTSPOT_TEMPERATURE": (-80.0, 400.0),
    "BEARING_TEMPERATURE": (-80.0, 400.0),
    "CELL_VOLTAGE": (0.0, 6.0),
    "CELL_TEMPERATURE": (-80.0, 300.0),
    "STATE_OF_CHARGE": (0.0, 100.0),
    "STATE_OF_HEALTH": (0.0, 100.0),
    "ENGINE_TEMPERATURE": (-80.0, 300.0),
    "COOLANT_TEMPERATURE": (-80.0, 300.0),
    "OIL_TEMPERATURE": (-80.0, 300.0),
    "OIL_PRESSURE": (0.0, 2_000.0),
    "TYRE_PRESSURE": (0.0, 2_000.0),
    "FUEL_LEVEL": (0.0, 100.0),
    "THROTTLE": (0.0, 100.0),
    "ENGINE_LOAD": (0.0, 100.0),
    "SPEED": (0.0, 500.0),
    "LATITUDE": (-90.0, 90.0),
    "LONGITUDE": (-180.0, 180.0),
    "HEADING": (0.0, 360.0),
}


@dataclass(frozen=True, slots=True)
class Limit:
    """One safety limit: ``value > bound`` (``above``) or ``value < bound`` (``below``)."""

    direction: Literal["above", "below"]
    bound: float
    severity: Severity

    def breached(self, value: float) -> bool:
        return value > self.bound if self.direction == "above" else value < self.bound


SAFETY_LIMITS: dict[tuple[str, str], tuple[Limit, ...]] = {
    # Li-ion envelope: above 60 degC or outside 2.5-4.3 V per cell is unsafe (4.2 V is the
    # usual end of charge; charging current adds I*R0 on top of it)
    ("BATTERY_PACK", "CELL_TEMPERATURE"): (
        Limit("above", 60.0, "CRITICAL"),
        Limit("above", 50.0, "WARNING"),
    ),
    ("BATTERY_PACK", "CELL_VOLTAGE"): (
        Limit("above", 4.3, "CRITICAL"),
        Limit("below", 2.5, "CRITICAL"),
    ),
    # IEC 60076-7 / IEEE C57.91: 140 degC hot spot is the emergency limit
    ("GRID_GUARDIAN", "HOTSPOT_TEMPERATURE"): (
        Limit("above", 140.0, "CRITICAL"),
        Limit("above", 120.0, "WARNING"),
    ),
    # ISO 10816-3 zones (mm/s RMS): above 11.2 damage, above 7.1 restricted operation
    ("MACHINE", "VIBRATION"): (
        Limit("above", 11.2, "CRITICAL"),
        Limit("above", 7.1, "WARNING"),
    ),
    ("MACHINE", "BEARING_TEMPERATURE"): (
        Limit("above", 95.0, "CRITICAL"),
        Limit("above", 80.0, "WARNING"),
    ),
    ("VEHICLE", "ENGINE_TEMPERATURE"): (
        Limit("above", 115.0, "CRITICAL"),
        Limit("above", 105.0, "WARNING"),
    ),
    # truck tyres run at about 830 kPa cold
    ("VEHICLE", "TYRE_PRESSURE"): (
        Limit("below", 600.0, "CRITICAL"),
        Limit("below", 700.0, "WARNING"),
    ),
    ("VEHICLE", "OIL_PRESSURE"): (Limit("below", 100.0, "CRITICAL"),),
}

STATE_CAPABILITIES = frozenset(
    {
        "STATE_OF_CHARGE",
        "STATE_OF_HEALTH",
        "FUEL_LEVEL",
        "BRAKE_PAD_WEAR",
        "ODOMETER",
        "LATITUDE",
        "LONGITUDE",
        "HEADING",
        "ALTITUDE",
        "GEAR",
    }
)
"""Integrated states, positions and selectors, not measurements with a stable distribution
(a refuel, a charge or a route is not an anomaly): the learned detectors leave them alone;
safety limits still apply."""

OPERATING_STATE: frozenset[tuple[str, str]] = frozenset({("BATTERY_PACK", "CURRENT")})
"""``(device type, capability)`` of signals that set the operating state rather than show the
device's condition: a pack's current is what the charger and the energy schedule command,
and it depends on the state of charge (a charge stops when the pack is full, a discharge
when it is empty), so it does not repeat yesterday's profile. The learned detectors do not
judge it (no ``anomaly:{CAPABILITY}``); the device window learns it and judges the other
signals *given* it (cells warming while charging are explained, a cell out of line with
the others and the current is not). Safety limits and sensor health still apply."""

MAX_FUTURE_MS = 5 * 60_000
"""A reading more than this ahead of the worker's clock is refused (``future_timestamp``)."""
MAX_PAST_MS = 7 * 86_400_000
"""A reading older than this is refused (``stale_timestamp``); retention would drop it."""


@dataclass(frozen=True, slots=True)
class Breach:
    """A breached safety limit: the alert rule name, its severity and the limit."""

    rule: str
    severity: Severity
    limit: Limit


def in_physical_range(capability: str, value: float) -> bool:
    """False when ``value`` cannot be a real measurement of ``capability``.

    >>> in_physical_range("HUMIDITY", 120.0), in_physical_range("GENERIC", 1e12)
    (False, True)
    """
    bounds = PHYSICAL_RANGES.get(capability)
    if bounds is None:
        return math.isfinite(value)
    return bounds[0] <= value <= bounds[1]


def check_limits(device_type: str, capability: str, value: float) -> Breach | None:
    """The most severe safety limit ``value`` breaches, or None.

    >>> check_limits("BATTERY_PACK", "CELL_TEMPERATURE", 61.0).severity
    'CRITICAL'
    >>> check_limits("BATTERY_PACK", "CELL_TEMPERATURE", 55.0).rule
    'limit:CELL_TEMPERATURE>50'
    """
    worst: Breach | None = None
    for key in ((device_type, capability), ("*", capability)):
        for limit in SAFETY_LIMITS.get(key, ()):
            if not limit.breached(value):
                continue
            if worst is None or SEVERITY_RANK[limit.severity] > SEVERITY_RANK[worst.severity]:
                op = ">" if limit.direction == "above" else "<"
                rule = f"limit:{capability}{op}{limit.bound:g}"
                worst = Breach(rule, limit.severity, limit)
    return worst


def assess_reading(
    *,
    capability: str,
    value: float,
    ts_ms: int,
    now_ms: int,
    device_type: str,
    known_device_type: str | None,
) -> tuple[Literal["OK", "SUSPECT", "REFUSE"], str]:
    """The bad-input verdict on one reading: ``(verdict, reason)``.

    * REFUSE (dead-letter with the reason): ``non_finite_value``, ``future_timestamp``
      (more than ``MAX_FUTURE_MS`` ahead of ``now_ms``), ``stale_timestamp`` (older than
      ``MAX_PAST_MS``);
    * SUSPECT (stored, kept out of learning): ``out_of_physical_range``,
      ``device_type_changed`` (the device's detector state must be reset by the caller);
    * OK otherwise (reason ``""``).

    >>> assess_reading(capability="HUMIDITY", value=140.0, ts_ms=0, now_ms=0,
    ...                device_type="EDGE_HUB", known_device_type="EDGE_HUB")
    ('SUSPECT', 'out_of_physical_range')
    """
    if math.isfinite(value):
        if ts_ms > now_ms + MAX_FUTURE_MS:
            return "REFUSE", "future_timestamp"
        if ts_ms < now_ms - MAX_PAST_MS:
            return "REFUSE", "stale_timestamp"
    return value_verdict(capability, value, device_type, known_device_type)


def value_verdict(
    capability: str, value: float, device_type: str, known_device_type: str | None
) -> tuple[Literal["OK", "SUSPECT", "REFUSE"], str]:
    """:func:`assess_reading` without its wall-clock rules (the detection stage's per-reading
    call: event times of replays are far from the clock).

    >>> value_verdict("CELL_TEMPERATURE", 25.0, "BATTERY_PACK", "GRID_TRANSFORMER")
    ('SUSPECT', 'device_type_changed')
    """
    if not math.isfinite(value):
        return "REFUSE", "non_finite_value"
    bounds = PHYSICAL_RANGES.get(capability)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        return "SUSPECT", "out_of_physical_range"
    if known_device_type is not None and device_type != known_device_type:
        return "SUSPECT", "device_type_changed"
    return "OK", ""
