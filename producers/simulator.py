"""Run a simulated fleet into ``telemetry.readings``: real time or accelerated event time.

Event time starts at ``start_ms`` and advances by ``1/rate`` seconds per tick. In real time
(``speedup=1``) a tick is sent when the wall clock reaches it; ``speedup=N`` plays N seconds
of event time per wall second; ``speedup=0`` sends as fast as the broker accepts.
The same seed and start give the same readings, byte for byte.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from producers.encoding import TickEncoder
from producers.fleet import KINDS, Fleet, FleetTick
from producers.scenarios import SCENARIOS
from schemas import AvroCodec
from topics.producer import ProducerMetrics, ReadingSender

__all__ = [
    "SimulationConfig",
    "SimulationReport",
    "build_records",
    "run_simulation",
]


@dataclass(frozen=True)
class SimulationConfig:
    """What to simulate; validated on construction (errors name the option)."""

    devices: int
    kinds: tuple[str, ...]
    rate_hz: float = 1.0
    speedup: float = 1.0
    start_ms: int | None = None
    duration_s: float | None = None
    seed: int = 0
    tenant_id: str = "default"
    failure_rate: float | None = None  # None: 0, or 0.1 when a scenario is named
    scenario: str | None = None
    onset_delay_s: float = 0.0  # added to every failure onset

    @property
    def effective_failure_rate(self) -> float:
        if self.failure_rate is not None:
            return self.failure_rate
        return 0.1 if self.scenario else 0.0

    def fleet(self) -> Fleet:
        """The fleet this configuration simulates (also used to regenerate expectations)."""
        return Fleet(
            self.devices,
            self.kinds,
            seed=self.seed,
            failure_rate=self.effective_failure_rate,
            scenario=self.scenario,
            step_s=1.0 / self.rate_hz,
            onset_delay_s=self.onset_delay_s,
            # Device ids are unique across tenants (docs/design.md): another tenant's fleet
            # is named apart, e.g. acme.bat-00000.
            id_prefix="" if self.tenant_id == "default" else f"{self.tenant_id}.",
        )

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown or not self.kinds:
            given = ", ".join(unknown) or "(none)"
            msg = f"--kinds: unknown device kind(s) {given}; choose from {', '.join(KINDS)}"
            raise ValueError(msg)
        if self.devices < 1:
            msg = f"--devices must be >= 1, got {self.devices}"
            raise ValueError(msg)
        if not 0 < self.rate_hz <= 1000:
            msg = f"--rate must be in (0, 1000] Hz, got {self.rate_hz}"
            raise ValueError(msg)
        if self.speedup < 0:
            msg = f"--speedup must be >= 0 (0 = as fast as possible), got {self.speedup}"
            raise ValueError(msg)
        if self.scenario is not None and self.scenario not in SCENARIOS:
            msg = f"--scenario {self.scenario!r} is unknown; choose from {', '.join(SCENARIOS)}"
            raise ValueError(msg)
        if self.failure_rate is not None and not 0.0 <= self.failure_rate <= 1.0:
            msg = f"--failure-rate must be in [0, 1], got {self.failure_rate}"
            raise ValueError(msg)
        if not 0 <= self.onset_delay_s < float("inf"):
            msg = f"--onset-delay must be a finite number of seconds >= 0, got {self.onset_delay_s}"
            raise ValueError(msg)
        if self.duration_s is not None and self.duration_s <= 0:
            msg = f"--duration must be > 0 seconds, got {self.duration_s}"
            raise ValueError(msg)


@dataclass
class SimulationReport:
    """What a run sent and what the broker acknowledged."""

    ticks: int = 0
    produced: int = 0
    delivered: int = 0
    undelivered: int = 0
    first_ts_ms: int | None = None
    last_ts_ms: int | None = None
    wall_seconds: float = 0.0
    last_error: str | None = field(default=None)
    max_lateness_s: float = 0.0  # paced runs: how late the latest tick started (0 = on time)


def build_records(fleet_tick: FleetTick, seq: int, tenant_id: str) -> list[dict]:
    """Avro-ready reading dicts for one tick (reading ids are deterministic).

    Each row carries its own event time and sequence (they differ from the tick's under
    clock and delivery faults: a skewed clock, readings flushed late by a gateway).
    """
    return [
        {
            "reading_id": f"{sensor}@{ts}",
            "device_id": dev,
            "device_type": dtype,
            "sensor_id": sensor,
            "capability": cap,
            "value": value,
            "unit": unit,
            "timestamp": ts,
            "sequence": sequence,
            "quality": "GOOD",
            "tenant_id": tenant_id,
            "attributes": {},
            "label": label,
        }
        for dev, dtype, sensor, cap, unit, value, label, ts, sequence in zip(
            fleet_tick.device_ids,
            fleet_tick.device_types,
            fleet_tick.sensors,
            fleet_tick.capabilities,
            fleet_tick.units,
            fleet_tick.values,
            fleet_tick.labels,
            fleet_tick.timestamps,
            fleet_tick.sequences(seq),
            strict=True,
        )
    ]


def run_simulation(
    config: SimulationConfig,
    producer: ReadingSender,
    codec: AvroCodec,
    topic: str,
    *,
    stop: threading.Event | None = None,
    now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    on_tick: Callable[[SimulationReport], None] | None = None,
    metrics: ProducerMetrics | None = None,
) -> SimulationReport:
    """Produce the fleet's readings until ``duration_s`` of event time or ``stop`` is set."""
    stop = stop or threading.Event()
    fleet = config.fleet()
    encoder = TickEncoder(fleet, codec, config.tenant_id)
    step_ms = round(1000 / config.rate_hz)
    wall0 = time.monotonic()
    if config.start_ms is not None:
        start_ms = config.start_ms
    else:  # now: the next step of the clock, and each tick sent when the clock reaches it
        now = now_ms()
        start_ms = -(-now // step_ms) * step_ms
        wall0 += (start_ms - now) / 1000.0
    end_ms = None if config.duration_s is None else start_ms + round(config.duration_s * 1000)
    report = SimulationReport(first_ts_ms=start_ms)
    seq = 0
    ts = start_ms
    while not stop.is_set() and (end_ms is None or ts < end_ms):
        if config.speedup > 0:
            due = wall0 + (ts - start_ms) / 1000.0 / config.speedup
            delay = due - time.monotonic()
            if delay > 0 and stop.wait(delay):
                break
            report.max_lateness_s = max(report.max_lateness_s, -delay)
        keys, values = encoder.encode(fleet.tick(ts), seq)
        # The Kafka record timestamp stays the produce time: event time lives in the record.
        # (Retention is by record timestamp; historical event times would be deleted at once.)
        producer.send_batch(topic, keys, values)
        report.ticks += 1
        report.produced += len(values)
        report.last_ts_ms = ts
        report.delivered = producer.delivered
        if metrics is not None:
            metrics.observe(report.produced, 0, producer)
        if on_tick is not None:
            on_tick(report)
        seq += 1
        ts += step_ms
    report.undelivered = producer.flush(timeout=120.0)
    report.delivered = producer.delivered
    report.last_error = producer.last_error
    report.wall_seconds = time.monotonic() - wall0
    if metrics is not None:
        metrics.observe(report.produced, 0, producer)
    return report
