"""What ``envirostream bench chaos`` checks at the end of a run: the pure comparisons and the
queries that feed them.

Nothing here trusts the worker's own figures: produced reading ids (kept by the bench as it
sends) are compared with the ids in ``readings FINAL``; every window of ``aggregates FINAL``
is compared with a ``GROUP BY`` over ``readings FINAL``; alert notifications are counted on
``telemetry.alerts`` itself (what operators are sent), dead letters on ``telemetry.dlq``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from producers.fleet import FleetTick
from schemas import AvroCodec
from topics import ALERTS, DLQ
from topics.dead_letters import read_dead_letters
from topics.kafka_config import KafkaTarget

__all__ = [
    "MALFORMED_KEY_PREFIX",
    "StoreCounts",
    "WindowKey",
    "WindowStats",
    "compare_windows",
    "dead_letters_by_reason",
    "duplicate_notifications",
    "read_alerts",
    "recomputed_windows",
    "store_counts",
    "stored_reading_ids",
    "stored_windows",
    "tick_reading_ids",
    "values_close",
]

MALFORMED_KEY_PREFIX = b"chaos-malformed-"  # the key of every record the bench breaks on purpose
REL_TOL = 1e-9

WindowKey = tuple[str, str, int]  # device_id, capability, window_start (epoch ms)
WindowStats = tuple[int, float, float, float, float]  # count, min, max, mean, std


def tick_reading_ids(tick: FleetTick) -> list[str]:
    """The reading ids of one fleet tick as the encoder writes them: ``{sensor}@{event ms}``
    (per row: a skewed clock or a gateway flush gives rows their own stamps)."""
    return [f"{sensor}@{ts}" for sensor, ts in zip(tick.sensors, tick.timestamps, strict=True)]


def values_close(a: float, b: float, scale: float) -> bool:
    """Equal within 1e-9 relative; ``scale`` (the window's mean) bounds the rounding of a
    spread near zero, where a relative test of two tiny numbers means nothing.

    >>> values_close(20.000000000001, 20.0, 20.0)
    True
    >>> values_close(20.001, 20.0, 20.0)
    False
    >>> values_close(3e-15, 0.0, 230.0)  # a constant window: std is rounding noise
    True
    """
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=REL_TOL * abs(scale) * 1e-3)


def compare_windows(
    recomputed: Mapping[WindowKey, WindowStats], stored: Mapping[WindowKey, WindowStats]
) -> list[str]:
    """One line per window that differs: missing from ``stored``, extra in it, or a field off
    (count/min/max exact, mean/std by :func:`values_close`).

    >>> want = {("d", "T", 0): (2, 1.0, 3.0, 2.0, 1.0), ("d", "T", 60_000): (1, 5.0, 5.0, 5.0, 0.0)}
    >>> compare_windows(want, dict(want))
    []
    >>> got = {("d", "T", 0): (2, 1.0, 3.0, 2.0000001, 1.0), ("e", "T", 0): (1, 1.0, 1.0, 1.0, 0.0)}
    >>> for line in compare_windows(want, got): print(line)
    d/T@0: mean 2.0000001 != 2.0
    d/T@60000: not in aggregates (1 readings)
    e/T@0: in aggregates, no readings
    """
    out: list[str] = []
    for key in sorted(recomputed.keys() | stored.keys()):
        name = f"{key[0]}/{key[1]}@{key[2]}"
        want, got = recomputed.get(key), stored.get(key)
        if got is None:
            out.append(f"{name}: not in aggregates ({want[0] if want else 0} readings)")
            continue
        if want is None:
            out.append(f"{name}: in aggregates, no readings")
            continue
        diffs = [
            f"{field} {g!r} != {w!r}"
            for field, w, g in zip(("count", "min", "max"), want[:3], got[:3], strict=True)
            if g != w
        ]
        diffs += [
            f"{field} {g!r} != {w!r}"
            for field, w, g in (("mean", want[3], got[3]), ("std", want[4], got[4]))
            if not values_close(g, w, want[3])
        ]
        if diffs:
            out.append(f"{name}: {', '.join(diffs)}")
    return out


def duplicate_notifications(records: Iterable[tuple[str, str, int]]) -> int:
    """Notifications sent more than once: each ``(alert_id, state, version)`` is one
    notification (a repeat or an escalation gets a new version), so every further copy is a
    duplicate, e.g. one re-sent after a killed worker replayed its input.

    >>> duplicate_notifications([("a", "FIRING", 1), ("a", "FIRING", 2), ("a", "RESOLVED", 3)])
    0
    >>> duplicate_notifications([("a", "FIRING", 1), ("a", "FIRING", 1), ("b", "FIRING", 1)])
    1
    """
    return sum(n - 1 for n in Counter(records).values() if n > 1)


def read_alerts(kafka: KafkaTarget, codec: AvroCodec) -> list[dict[str, Any]]:
    """Every record of ``telemetry.alerts`` (to the end it had when the read started)."""
    return [
        codec.decode(letter.value, "Alert")
        for letter in read_dead_letters(kafka, topic=ALERTS)
        if letter.value
    ]


def dead_letters_by_reason(kafka: KafkaTarget) -> tuple[dict[str, int], int, int]:
    """Distinct dead letters (by source partition and offset: a replay after a kill may
    refuse a record twice) per reason; the injected ones and the others."""
    seen: dict[tuple[int | None, int | None, str], bool] = {}
    for letter in read_dead_letters(kafka, topic=DLQ):
        injected = (letter.key or b"").startswith(MALFORMED_KEY_PREFIX)
        seen[(letter.source_partition, letter.source_offset, letter.reason)] = injected
    by_reason = Counter(reason for (_, _, reason) in seen)
    n_injected = sum(seen.values())
    return dict(sorted(by_reason.items())), n_injected, len(seen) - n_injected


def recomputed_windows(client: Any, window_ms: int) -> dict[WindowKey, WindowStats]:
    """Every window's statistics computed by the store from ``readings FINAL``."""
    rows = client.query(
        "SELECT device_id, capability, "
        "intDiv(toUnixTimestamp64Milli(ts), {w:Int64}) * {w:Int64} AS ws, "
        "count(), min(value), max(value), avg(value), stddevPopStable(value) "
        "FROM readings FINAL GROUP BY device_id, capability, ws",
        parameters={"w": window_ms},
    ).result_rows
    return {(r[0], r[1], int(r[2])): (int(r[3]), r[4], r[5], r[6], r[7]) for r in rows}


def stored_windows(client: Any) -> dict[WindowKey, WindowStats]:
    """Every window of ``aggregates FINAL`` as the worker emitted (and corrected) it."""
    rows = client.query(
        "SELECT device_id, capability, toUnixTimestamp64Milli(window_start), "
        "count, min, max, mean, std FROM aggregates FINAL"
    ).result_rows
    return {(r[0], r[1], int(r[2])): (int(r[3]), r[4], r[5], r[6], r[7]) for r in rows}


@dataclass(frozen=True)
class StoreCounts:
    stored: int
    raw_before_optimize: int
    duplicated: int


def store_counts(client: Any) -> StoreCounts:
    """``readings``: rows with FINAL, raw rows, and raw minus FINAL after ``OPTIMIZE FINAL``."""
    raw_before = int(client.query("SELECT count() FROM readings").result_rows[0][0])
    client.command("OPTIMIZE TABLE readings FINAL")
    client.command("OPTIMIZE TABLE aggregates FINAL")
    stored = int(client.query("SELECT count() FROM readings FINAL").result_rows[0][0])
    raw = int(client.query("SELECT count() FROM readings").result_rows[0][0])
    return StoreCounts(stored, raw_before, raw - stored)


def stored_reading_ids(client: Any) -> set[str]:
    return {r[0] for r in client.query("SELECT reading_id FROM readings FINAL").result_rows}
