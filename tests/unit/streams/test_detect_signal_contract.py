"""One contract suite run over every registered signal (``streams.signals.SIGNALS``).

Each signal has a scenario that makes it fire; the suite checks, for every signal: it fires
(its findings are recorded at the hooks), it is deterministic, a checkpoint round trip (the
stage's, and the signal's own) continues identically, its state stays bounded, and the
feedback on a score it raised is claimed by it alone and raises its threshold.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from streams.alerts import AlertPolicy
from streams.detection import DetectionConfig, DetectionStage
from streams.signals import SIGNALS, AlertCandidate, Signal

MIN = 60_000
HOUR = 60 * MIN
DAY = 1_440  # minutes
START = 1_767_225_600_000  # 2026-01-01 00:00 UTC
SRC = ("telemetry.readings", 0)
CONFIG = DetectionConfig(
    warmup=200,
    window_warmup=30,
    window_min_learned=30,
    likelihood_warmup=150,
    likelihood_history=300,
    joint=True,  # opt-in (ENVIROSTREAM_DETECTOR_JOINT)
)

Tick = dict[tuple[str, str], float]  # (sensor, capability) -> value
Scenario = Callable[[int, random.Random], Tick]


def _level(i: int, rng: random.Random, base: float = 50.0, noise: float = 0.5) -> float:
    return base + 5.0 * math.sin(2 * math.pi * (i % 1_440) / 1_440) + rng.gauss(0.0, noise)


def _score(i: int, rng: random.Random) -> Tick:
    return {("t", "BEARING_TEMPERATURE"): _level(i, rng) + (15.0 if i >= 900 else 0.0)}


def _likelihood(i: int, rng: random.Random) -> Tick:
    # a day of noise around 10, then 3.5 standard deviations higher (below |z| 6)
    value = 13.5 + rng.gauss(0, 0.3) if i >= DAY else 10.0 + rng.gauss(0, 1)
    return {("g", "GENERIC"): value}


def _flat_line(i: int, rng: random.Random) -> Tick:
    return {("t", "BEARING_TEMPERATURE"): 50.0 if i >= 900 else _level(i, rng)}


def _trend(i: int, rng: random.Random) -> Tick:
    # a day and a bit at 50 degC, then +0.1 degC a minute towards the 80 degC limit
    return {("t", "BEARING_TEMPERATURE"): 50.0 + rng.gauss(0, 0.2) + max(0, i - 1_640) * 0.1}


def _profile_drift(i: int, rng: random.Random) -> Tick:
    # a day of the daily cycle (the profile), then +0.05 degC a minute above it
    return {("t", "BEARING_TEMPERATURE"): _level(i, rng) + max(0, i - DAY - 60) * 0.05}


def _limits(i: int, rng: random.Random) -> Tick:
    return {("t", "BEARING_TEMPERATURE"): 96.0 if i % 300 == 299 else _level(i, rng)}


def _window(i: int, rng: random.Random) -> Tick:
    load = math.sin(2 * math.pi * (i % 1_440) / 1_440) + 0.3 * rng.gauss(0, 1)
    rise = 2.0 if i >= DAY + 600 else 0.0  # on day two: the daily profiles are learned
    return {
        ("t", "BEARING_TEMPERATURE"): 50.0 + 5.0 * load + 0.3 * rng.gauss(0, 1) + rise,
        ("v", "VIBRATION"): 2.0 + 0.5 * load + 0.03 * rng.gauss(0, 1) + rise / 10,
        ("f", "FLOW"): 100.0 + 20.0 * load + 1.0 * rng.gauss(0, 1),
    }


def _joint(i: int, rng: random.Random) -> Tick:
    # three signals of one machine moving with its load, every minute; from minute 600 the
    # flow turns against the load (a valve): no value leaves its usual range
    load = rng.gauss(0, 1)
    sign = -1.0 if i >= 600 else 1.0
    return {
        ("t", "BEARING_TEMPERATURE"): 50.0 + 5.0 * load + 0.3 * rng.gauss(0, 1),
        ("v", "VIBRATION"): 2.0 + 0.5 * load + 0.03 * rng.gauss(0, 1),
        ("f", "FLOW"): 100.0 + sign * 20.0 * load + 1.0 * rng.gauss(0, 1),
    }


SCENARIOS: dict[str, tuple[Scenario, int]] = {
    "gaps": (_score, 1_000),  # the sequence is what matters: see _sequence
    "window": (_window, DAY + 660),
    "joint": (_joint, 700),
    "limits": (_limits, 1_000),
    "likelihood": (_likelihood, DAY + 60),
    "score": (_score, 1_000),
    "flat_line": (_flat_line, 1_000),
    "trend": (_trend, 1_940),
    "profile_drift": (_profile_drift, DAY + 240),
}
"""Signal name -> (its scenario, minutes to feed)."""


def _sequence(name: str, i: int) -> int:
    return i if name != "gaps" or i < 500 else 500 + 2 * (i - 500)  # every other tick lost


def _readings(name: str, start: int, stop: int) -> Iterator[dict[str, Any]]:
    scenario, _ = SCENARIOS[name]
    rng = random.Random(7)
    for i in range(stop):
        tick = scenario(i, rng)
        if i < start:
            continue
        ts = START + i * MIN
        for (sensor, cap), value in tick.items():
            yield {
                "reading_id": f"d1/{sensor}@{ts}",
                "device_id": "d1",
                "device_type": "MACHINE",
                "sensor_id": f"d1/{sensor}",
                "capability": cap,
                "value": value,
                "timestamp": ts,
                "sequence": _sequence(name, i),
                "quality": "GOOD",
                "tenant_id": "default",
            }


def _recording(cls: type[Signal], found: list[Any]) -> type[Signal]:
    """``cls`` with every finding of its hooks appended to ``found``."""

    class Recording(cls):  # type: ignore[valid-type,misc]
        def on_device(self, *args: Any, **kw: Any) -> Any:
            out = super().on_device(*args, **kw)
            found.extend(out)
            return out

        def on_reading(self, *args: Any, **kw: Any) -> Any:
            out = super().on_reading(*args, **kw)
            found.extend(out)
            return out

        def on_series(self, *args: Any, **kw: Any) -> Any:
            out = super().on_series(*args, **kw)
            found.extend(out)
            return out

    return Recording


class _Recorded:
    """A stage running ``name`` (and the per-reading score, which teaches the baselines),
    with the findings of ``name`` recorded at its hooks."""

    def __init__(self, name: str) -> None:
        self.found: list[Any] = []
        classes = [
            _recording(cls, self.found) if cls.name == name else cls
            for cls in SIGNALS
            if cls.name in {"score", name}
        ]
        self.stage = DetectionStage(
            CONFIG,
            policy=AlertPolicy(quiet_period_ms=HOUR, repeat_interval_ms=48 * HOUR),
            signals=classes,
        )
        self.signal = next(s for s in self.stage.signals if s.name == name)

    def feed(self, name: str, start: int, stop: int) -> list[Any]:
        before = len(self.found)
        for r in _readings(name, start, stop):
            self.stage.observe(SRC, r)
        self.stage.tick([SRC])
        self.stage.take()
        return self.found[before:]


@pytest.fixture(params=sorted(cls.name for cls in SIGNALS))
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _minutes(name: str) -> int:
    return SCENARIOS[name][1]


def test_every_registered_signal_has_a_scenario() -> None:
    names = [cls.name for cls in SIGNALS]
    assert len(set(names)) == len(names), "signal names key their state: keep them unique"
    assert sorted(SCENARIOS) == sorted(names)


def test_the_signal_fires_on_its_scenario(name: str) -> None:
    found = _Recorded(name).feed(name, 0, _minutes(name))
    assert [f for f in found if isinstance(f, AlertCandidate)], f"{name} never fired"


def test_the_signal_is_deterministic(name: str) -> None:
    a = _Recorded(name).feed(name, 0, _minutes(name))
    b = _Recorded(name).feed(name, 0, _minutes(name))
    assert repr(a) == repr(b)


def test_a_checkpoint_round_trip_continues_identically(name: str) -> None:
    half = _minutes(name) * 2 // 3
    first = _Recorded(name)
    first.feed(name, 0, half)
    records = [(k, v) for _, k, v in first.stage.checkpoint()]
    second = _Recorded(name)
    assert second.stage.load_checkpoint(records, SRC) == 1
    assert repr(second.feed(name, half, _minutes(name))) == repr(
        first.feed(name, half, _minutes(name))
    )


def test_the_signal_restores_its_own_checkpoint(name: str) -> None:
    half = _minutes(name) * 2 // 3
    first = _Recorded(name)
    first.feed(name, 0, half)
    blob = first.signal.checkpoint(first.stage.devices[("default", "d1")])
    second = _Recorded(name)  # the same device, its other state from the stage's checkpoint
    second.stage.load_checkpoint([(k, v) for _, k, v in first.stage.checkpoint()], SRC)
    dev = second.stage.devices[("default", "d1")]
    dev.signals.pop(name, None)  # this signal's part forgotten ...
    for ser in dev.series.values():
        ser.signals.pop(name, None)
    second.signal.restore(dev, blob)  # ... and restored from its own checkpoint
    assert repr(second.feed(name, half, _minutes(name))) == repr(
        first.feed(name, half, _minutes(name))
    )


def test_the_state_stays_bounded(name: str) -> None:
    run = _Recorded(name)
    run.feed(name, 0, 400)
    dev = run.stage.devices[("default", "d1")]
    small = len(run.signal.checkpoint(dev))
    run.feed(name, 400, 2_400)
    large = len(run.signal.checkpoint(dev))
    assert large <= small * 1.5 + 2_048, (small, large)


def _score_attributes(found: list[Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for f in found:
        if isinstance(f, AlertCandidate):
            for k, v in (f.attributes or {}).items():
                if k.startswith("score:"):
                    out[k] = max(out.get(k, 0.0), float(v))
    return out


def test_feedback_is_claimed_by_the_signal_alone_and_raises_its_threshold(name: str) -> None:
    run = _Recorded(name)
    scores = _score_attributes(run.feed(name, 0, _minutes(name)))
    dev = run.stage.devices[("default", "d1")]
    others: list[Signal] = [cls(CONFIG) for cls in SIGNALS if cls.name != name]
    for attribute, score in scores.items():
        assert not [s.name for s in others if s.feedback(dev, attribute, score)]
        before = run.signal.thresholds(dev)
        assert run.signal.feedback(dev, attribute, score)
        after = run.signal.thresholds(dev)
        raised = [k for k, v in after.items() if v > max(score, before.get(k, 0.0))]
        assert raised, (attribute, score, before, after)
    if name in {"score", "likelihood", "window", "joint"}:  # the signals that learn a threshold
        assert scores, f"{name} raised no score attribute to give feedback on"
    else:  # rules: feedback never changes them
        assert not scores
        assert not run.signal.feedback(dev, "score:BEARING_TEMPERATURE", 99.0)
