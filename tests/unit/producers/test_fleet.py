"""The fleet simulator: determinism to the byte, shape, the fast encoder, bad options."""

from __future__ import annotations

import pytest

from producers.encoding import TickEncoder
from producers.fleet import KINDS, Fleet
from producers.models import KIND_MODELS, Vehicle
from producers.scenarios import SCENARIOS
from producers.simulator import SimulationConfig, build_records
from schemas import AvroCodec

T0 = 1_767_225_600_000


def _bytes(config: SimulationConfig, ticks: int) -> list[bytes]:
    fleet = config.fleet()
    enc = TickEncoder(fleet, AvroCodec())
    out: list[bytes] = []
    for i in range(ticks):
        out += enc.encode(fleet.tick(T0 + i * 1000), i)[1]
    return out


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    cfg = SimulationConfig(devices=40, kinds=KINDS, seed=3, failure_rate=0.5)
    assert _bytes(cfg, 5) == _bytes(cfg, 5)
    other = SimulationConfig(devices=40, kinds=KINDS, seed=4, failure_rate=0.5)
    assert _bytes(other, 1) != _bytes(cfg, 1)


def test_fast_encoder_writes_exactly_what_the_codec_writes() -> None:
    fleet = Fleet(24, KINDS, seed=1, failure_rate=1.0)
    codec = AvroCodec()
    enc = TickEncoder(fleet, codec)
    for i in (0, 1, 5000):
        tick = fleet.tick(T0 + i * 1000)
        keys, values = enc.encode(tick, i)
        records = build_records(tick, i, "default")
        assert values == codec.encode_batch("UniversalSensorReading", records)
        assert keys == [r["device_id"].encode() for r in records]
    assert any(r["label"] for r in records)


def test_every_device_reports_each_of_its_sensors_once_per_tick() -> None:
    fleet = Fleet(8, ["grid", "machine"], seed=0)
    tick = fleet.tick(T0)
    per_model = {m.device_type: len(m.channels) for ms in KIND_MODELS.values() for m in ms}
    types_by_device = dict(zip(tick.device_ids, tick.device_types, strict=True))
    expected = sum(per_model[t] for t in types_by_device.values())
    assert len(tick.values) == fleet.readings_per_tick == expected
    assert len(set(tick.sensors)) == len(tick.sensors)


def test_vehicle_has_at_least_forty_metrics() -> None:
    assert len(Vehicle.channels) >= 40
    assert len({c.sensor for c in Vehicle.channels}) == len(Vehicle.channels)


def test_grid_kind_has_guardians_and_edge_hubs() -> None:
    fleet = Fleet(16, ["grid"], seed=0)
    assert set(fleet.static.device_types) == {"GRID_GUARDIAN", "EDGE_HUB"}


def test_reading_ids_are_deterministic_and_unique() -> None:
    fleet = Fleet(5, ["battery"], seed=0)
    recs = build_records(fleet.tick(1000), 1, "default") + build_records(fleet.tick(2000), 2, "t")
    ids = [r["reading_id"] for r in recs]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "bat-00000/current@1000"
    assert "bat-00000/cell_voltage_1@1000" in ids


def test_failure_rate_never_changes_healthy_devices() -> None:
    healthy = Fleet(40, KINDS, seed=9)
    mixed = Fleet(40, KINDS, seed=9, failure_rate=0.4)
    assert 5 <= len(mixed.assignments) <= 30
    for i in range(3):
        a, b = healthy.tick(T0 + i * 1000), mixed.tick(T0 + i * 1000)
        ra = dict(zip(a.sensors, a.values, strict=True))
        for s, v, lb, d in zip(b.sensors, b.values, b.labels, b.device_ids, strict=True):
            if d not in mixed.assignments:
                assert lb is None and ra[s] == v


def test_scenario_option_restricts_failures_to_that_scenario() -> None:
    fleet = Fleet(40, KINDS, seed=2, scenario="bearing_wear", failure_rate=1.0)
    assert set(fleet.assignments.values()) == {"bearing_wear"}
    assert all(d.startswith("mach-") for d in fleet.assignments)


def test_at_least_eight_scenarios() -> None:
    assert len(SCENARIOS) >= 8


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"devices": 0}, "--devices"),
        ({"rate_hz": 0}, "--rate"),
        ({"speedup": -1}, "--speedup"),
        ({"duration_s": 0}, "--duration"),
        ({"scenario": "meteor"}, "--scenario"),
        ({"failure_rate": 1.5}, "--failure-rate"),
        ({"kinds": ("toaster",)}, "--kinds"),
    ],
)
def test_bad_options_name_the_option(kwargs: dict, option: str) -> None:
    base = {"devices": 1, "kinds": ("grid",)}
    with pytest.raises(ValueError, match=option):
        SimulationConfig(**(base | kwargs))


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown device kind"):
        Fleet(3, ["toaster"])


def test_producer_metrics_count_increments_on_their_own_registry() -> None:
    from prometheus_client import CollectorRegistry

    from topics.producer import ProducerMetrics, RecordProducer

    registry = CollectorRegistry()
    metrics = ProducerMetrics(registry, "simulator")
    producer = RecordProducer("127.0.0.1:1")  # never used to send: only its counters are read
    producer.delivered, producer.failed = 90, 3
    metrics.observe(100, 0, producer)
    producer.delivered = 97
    metrics.observe(100, 0, producer)
    labels = {"source": "simulator"}

    def value(name: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("envirostream_readings_produced_total") == 100
    assert value("envirostream_readings_delivered_total") == 97
    assert value("envirostream_delivery_failures_total") == 3


def test_another_tenants_fleet_is_named_apart() -> None:
    from producers.simulator import SimulationConfig

    plain = SimulationConfig(devices=3, kinds=("machine",)).fleet().device_ids
    acme = SimulationConfig(devices=3, kinds=("machine",), tenant_id="acme").fleet().device_ids
    assert acme == [f"acme.{d}" for d in plain] and not set(acme) & set(plain)
