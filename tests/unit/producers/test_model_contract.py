"""The device-model contract, run against every model registered in ``KIND_MODELS``.

A new model is covered as soon as it is registered: it must declare names the Avro schema
knows, be deterministic for a seed, stay inside each capability's physical range while
healthy, and, through the simulator, produce readings with one unit per capability,
a sequence that grows per sensor, and a ground-truth label only under a failure scenario.
"""

from __future__ import annotations

import json
from collections import defaultdict
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from producers.models import KIND_MODELS, DeviceModel
from producers.scenarios import PHASES, SCENARIOS
from producers.simulator import SimulationConfig, run_simulation
from schemas import AvroCodec
from streams.detect.rules import PHYSICAL_RANGES

T0_S = 1_767_225_600.0  # 2026-01-01T00:00:00Z
READING_SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "UniversalSensorReading.avsc"

DIMENSIONLESS = {"GEAR"}

KIND_OF: dict[type[DeviceModel], str] = {
    model: kind for kind, models in KIND_MODELS.items() for model in models
}
MODELS = list(KIND_OF)
MODEL_IDS = [m.__name__ for m in MODELS]
MODEL_SCENARIOS = [
    pytest.param(model, name, id=f"{model.__name__}-{name}")
    for model in MODELS
    for name, scenario in SCENARIOS.items()
    if scenario.applies_to(model)
]


def _enum_symbols(field: str) -> set[str]:
    schema = json.loads(READING_SCHEMA.read_text())
    (ftype,) = [f["type"] for f in schema["fields"] if f["name"] == field]
    return set(ftype["symbols"]) - {"UNKNOWN"}


def _run(model_cls: type[DeviceModel], seed: int, n: int, steps: int, dt_s: float) -> np.ndarray:
    """Readings of ``n`` healthy devices over ``steps`` steps, shape (steps, n, channels)."""
    model = model_cls(n, np.random.default_rng(seed))
    return np.stack([model.step(T0_S + i * dt_s, dt_s) for i in range(steps)])


class _CollectingProducer:
    """Stands in for ``RecordProducer``: keeps what would have been sent."""

    def __init__(self) -> None:
        self.values: list[bytes] = []
        self.delivered = 0
        self.last_error: str | None = None

    def send_batch(self, topic: str, keys: list[bytes], values: list[bytes]) -> None:
        self.values += values
        self.delivered += len(values)

    def flush(self, timeout: float) -> int:
        return 0


def _simulate(config: SimulationConfig) -> list[dict[str, Any]]:
    """The decoded readings the simulator would send for ``config``."""
    codec = AvroCodec()
    producer = _CollectingProducer()
    run_simulation(config, producer, codec, "telemetry.readings")  # type: ignore[arg-type]
    decoded = codec.decode_batch("UniversalSensorReading", producer.values)
    bad = [d for d in decoded if not isinstance(d, dict)]
    assert not bad, bad[:3]
    return [d for d in decoded if isinstance(d, dict)]


def _fleet_config(model: type[DeviceModel], per_model: int, **kwargs: Any) -> SimulationConfig:
    """A one-kind fleet holding ``per_model`` devices of ``model`` (and its kind's others)."""
    kind = KIND_OF[model]
    devices = per_model * len(KIND_MODELS[kind])
    return SimulationConfig(
        devices=devices, kinds=(kind,), speedup=0, start_ms=int(T0_S * 1000), **kwargs
    )


# -- what a model declares --------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_declares_a_device_type_and_capabilities_of_the_schema(model: type[DeviceModel]) -> None:
    assert model.device_type in _enum_symbols("device_type")
    assert model.channels, f"{model.__name__} declares no channels"
    unknown = {ch.capability for ch in model.channels} - _enum_symbols("capability")
    assert not unknown, f"{model.__name__}: capabilities not in the Avro enum: {sorted(unknown)}"
    # A unit names a physical dimension; only counts without one (a gear number) leave it empty.
    unitless = {ch.capability for ch in model.channels if not ch.unit.strip()}
    assert unitless <= DIMENSIONLESS, f"{model.__name__}: no unit for {sorted(unitless)}"


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_sensors_are_unique_and_the_primary_is_one_of_them(model: type[DeviceModel]) -> None:
    sensors = [ch.sensor for ch in model.channels]
    assert len(set(sensors)) == len(sensors), sensors
    assert model.primary in sensors
    assert model.prefix and model.prefix.isidentifier()


def test_prefixes_differ_so_device_ids_do_not_collide() -> None:
    prefixes = [m.prefix for m in MODELS]
    assert len(set(prefixes)) == len(prefixes), prefixes


def test_a_capability_has_one_unit_across_all_models() -> None:
    units: dict[str, set[str]] = defaultdict(set)
    for model in MODELS:
        for ch in model.channels:
            units[ch.capability].add(ch.unit)
    assert {c: u for c, u in units.items() if len(u) > 1} == {}


# -- what a model computes ---------------------------------------------------------------------
@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_same_seed_same_readings_other_seed_others(model: type[DeviceModel]) -> None:
    first = _run(model, seed=7, n=5, steps=50, dt_s=10.0)
    assert first.shape == (50, 5, len(model.channels))
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(first, _run(model, seed=7, n=5, steps=50, dt_s=10.0))
    assert not np.array_equal(first, _run(model, seed=8, n=5, steps=50, dt_s=10.0))


@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
@pytest.mark.parametrize(("steps", "dt_s"), [(2 * 720, 120.0), (600, 1.0)], ids=["2days", "10min"])
def test_healthy_values_stay_in_their_physical_range(
    model: type[DeviceModel], steps: int, dt_s: float
) -> None:
    out = _run(model, seed=3, n=16, steps=steps, dt_s=dt_s)
    problems = []
    for i, ch in enumerate(model.channels):
        bounds = PHYSICAL_RANGES.get(ch.capability)
        if bounds is None:
            continue
        lo, hi = float(out[:, :, i].min()), float(out[:, :, i].max())
        if lo < bounds[0] or hi > bounds[1]:
            problems.append(f"{ch.sensor} ({ch.capability}) spans [{lo:.3g}, {hi:.3g}]; {bounds}")
    assert not problems, problems


# -- what the simulator sends for a model ------------------------------------------------------
@pytest.mark.parametrize("model", MODELS, ids=MODEL_IDS)
def test_simulated_readings_keep_the_reading_contract(model: type[DeviceModel]) -> None:
    readings = _simulate(_fleet_config(model, per_model=2, duration_s=20, seed=5))
    mine = [r for r in readings if r["device_type"] == model.device_type]
    devices = {r["device_id"] for r in mine}
    assert len(devices) >= 2
    assert len(mine) == len(devices) * len(model.channels) * 20  # every sensor, every tick
    unit_of = {ch.capability: ch.unit for ch in model.channels}
    sensors = {ch.sensor for ch in model.channels}
    by_sensor: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for r in mine:
        assert r["capability"] in unit_of and r["unit"] == unit_of[r["capability"]], r
        device, sensor = r["sensor_id"].split("/", 1)
        assert device == r["device_id"] and device.startswith(model.prefix + "-")
        assert sensor in sensors
        assert r["label"] is None, f"label without a failure scenario: {r}"
        assert r["quality"] == "GOOD"
        by_sensor[r["sensor_id"]].append((r["sequence"], r["timestamp"]))
    assert len({r["reading_id"] for r in mine}) == len(mine)
    for sensor_id, seen in by_sensor.items():
        sequences, stamps = zip(*seen, strict=True)
        assert all(b > a for a, b in pairwise(sequences)), sensor_id
        assert all(b > a for a, b in pairwise(stamps)), sensor_id


@pytest.mark.parametrize(("model", "scenario"), MODEL_SCENARIOS)
def test_labels_only_on_devices_under_a_failure_scenario(
    model: type[DeviceModel], scenario: str
) -> None:
    config = _fleet_config(
        model, per_model=6, duration_s=5, seed=11, scenario=scenario, failure_rate=0.5
    )
    afflicted = set(config.fleet().assignments)
    mine = [r for r in _simulate(config) if r["device_type"] == model.device_type]
    devices = {r["device_id"] for r in mine}
    assert devices & afflicted and devices - afflicted, "seed 11 should give both kinds"
    sequences: dict[str, list[int]] = defaultdict(list)
    for r in mine:
        sequences[r["sensor_id"]].append(r["sequence"])
        if r["device_id"] in afflicted:
            assert r["label"] is not None, f"no label on a device under {scenario}: {r}"
            assert r["label"]["scenario"] == scenario and r["label"]["phase"] in PHASES, r
        else:
            assert r["label"] is None, r
    # A scenario may drop readings (gaps), never reorder or repeat them.
    assert all(b > a for seq in sequences.values() for a, b in pairwise(seq))
