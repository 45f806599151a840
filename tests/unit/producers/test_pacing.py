"""The simulator in real time stamps a reading with the time it is sent: a tick goes out
when the wall clock reaches its event time, never a fraction of a second later (a soak's
latency would count that as the pipeline's)."""

from __future__ import annotations

import time

from producers.models import KINDS
from producers.simulator import SimulationConfig, SimulationReport, run_simulation
from schemas import AvroCodec
from tests.unit.producers.test_model_contract import _CollectingProducer


def test_real_time_ticks_are_sent_when_the_clock_reaches_their_event_time() -> None:
    sent: list[tuple[int, float]] = []  # (tick event time ms, wall clock ms when sent)

    def on_tick(report: SimulationReport) -> None:
        assert report.last_ts_ms is not None
        sent.append((report.last_ts_ms, time.time() * 1000))

    called_ms = time.time() * 1000
    config = SimulationConfig(
        devices=2, kinds=KINDS, speedup=1.0, rate_hz=4.0, duration_s=1.0, seed=1
    )
    run_simulation(
        config,
        _CollectingProducer(),  # type: ignore[arg-type]
        AvroCodec(),
        "telemetry.readings",
        on_tick=on_tick,
    )
    assert [ts - sent[0][0] for ts, _ in sent] == [0, 250, 500, 750]
    assert sent[0][0] >= called_ms  # the next step of the clock, not the one before
    late = [wall - ts for ts, wall in sent]
    assert all(-5 <= d <= 100 for d in late), late  # sent at its time (-5: clock jitter)
