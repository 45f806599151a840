"""Sequence gaps: a restarted counter is a reboot, a replay is no gap, a checkpoint's age
is no gap.

Pure: readings go straight to ``DetectionStage.observe`` (event time, 1 reading a minute).
"""

from __future__ import annotations

from typing import Any

from streams.alerts import AlertPolicy
from streams.detection import DetectionConfig, DetectionStage
from streams.signals.gaps import RESTART_DETECTOR, GapState

MIN = 60_000
HOUR = 60 * MIN
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SRC = ("telemetry.readings", 0)
DEVICE = ("default", "m1")


def _reading(i: int, seq: int) -> dict[str, Any]:
    ts = START + i * MIN
    return {
        "reading_id": f"m1@{ts}",
        "device_id": "m1",
        "device_type": "MACHINE",
        "sensor_id": "m1/t",
        "capability": "BEARING_TEMPERATURE",
        "value": 50.0 + (i % 7) * 0.1,
        "timestamp": ts,
        "sequence": seq,
        "quality": "GOOD",
        "tenant_id": "default",
    }


def _stage() -> DetectionStage:
    policy = AlertPolicy(quiet_period_ms=HOUR, repeat_interval_ms=48 * HOUR)
    return DetectionStage(DetectionConfig(warmup=200), policy=policy)


def _feed(
    stage: DetectionStage, ticks: list[tuple[int, int]], restarts: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Feed ``(minute, sequence)`` ticks; the ``device:gaps`` alert records sent (and the
    ``sequence_restart`` records appended to ``restarts``)."""
    sent = []
    for i, seq in ticks:
        stage.observe(SRC, _reading(i, seq))
        stage.tick([SRC])
        out = stage.take()
        sent += [a for a in out.alerts if a["rule"] == "device:gaps"]
        if restarts is not None:
            restarts += [a for a in out.anomalies if a["detector"] == RESTART_DETECTOR]
    return sent


def _gaps(stage: DetectionStage) -> GapState:
    state: GapState = stage.devices[DEVICE].signals["gaps"]
    return state


def test_a_restarted_counter_is_a_reboot_counted_not_a_gap() -> None:
    stage = _stage()
    assert _feed(stage, [(i, 5_000 + i) for i in range(100)]) == []
    stage.observe(SRC, _reading(100, 0))  # rebooted: the counter starts again, time moves on
    out = stage.take()
    restarts = [a for a in out.anomalies if a["detector"] == RESTART_DETECTOR]
    assert [(r["value"], r["score"], r["ts"]) for r in restarts] == [
        (0.0, 5_099.0, START + 100 * MIN)
    ]
    assert out.anomaly_counts[(RESTART_DETECTOR, "MACHINE")] == 1
    assert out.alerts == []
    assert _gaps(stage).restarts == 1 and _gaps(stage).missing < 0.01
    # counting goes on from the new number: no gap while it climbs back ...
    assert _feed(stage, [(100 + k, k) for k in range(1, 100)]) == []
    # ... and real gaps after the reboot are still seen (every other tick lost)
    lossy = [(200 + k, 100 + 2 * k) for k in range(60)]
    assert len(_feed(stage, lossy)) == 1


def test_a_backward_sequence_without_newer_time_is_a_replay() -> None:
    stage = _stage()
    _feed(stage, [(i, i) for i in range(300)])
    # the worker replays the last 50 readings (same times, same sequences) and goes on
    restarts: list[Any] = []
    assert _feed(stage, [(i, i) for i in range(250, 400)], restarts) == []
    assert restarts == []
    assert _gaps(stage).restarts == 0 and _gaps(stage).missing < 0.01


def test_a_checkpoint_behind_the_replay_is_not_a_gap() -> None:
    first = _stage()
    _feed(first, [(i, i) for i in range(100)])
    behind = [(k, v) for _, k, v in first.checkpoint()]  # checkpointed at sequence 99
    _feed(first, [(i, i) for i in range(100, 300)])  # processed, committed up to 250, killed
    second = _stage()
    assert second.load_checkpoint(behind, SRC) == 1
    # the replay starts at the committed offset: sequence 250 after a state at 99
    assert _feed(second, [(i, i) for i in range(250, 400)]) == []
    assert _gaps(second).missing < 0.05
    # and a real gap later is seen as before
    assert len(_feed(second, [(400 + k, 400 + 2 * k) for k in range(60)])) == 1


def test_a_checkpoint_ahead_of_the_replay_is_not_a_gap_or_a_reboot() -> None:
    first = _stage()
    _feed(first, [(i, i) for i in range(300)])
    ahead = [(k, v) for _, k, v in first.checkpoint()]  # at sequence 299
    second = _stage()
    second.load_checkpoint(ahead, SRC)
    # the replay starts at sequence 30 (below the reboot bound), times at or before 299's
    restarts: list[Any] = []
    assert _feed(second, [(i, i) for i in range(30, 320)], restarts) == []
    assert restarts == []
    assert _gaps(second).restarts == 0 and _gaps(second).last_seq == 319
