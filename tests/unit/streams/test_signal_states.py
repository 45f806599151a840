"""New series start from a copy of one unlearned baseline; series of one kind share hooks."""

from __future__ import annotations

from streams.detection_stage import DetectionStage
from streams.signal_states import baseline_model
from streams.signals import DetectionConfig, Trend


def test_a_new_series_baseline_equals_a_freshly_built_one_after_others_learned() -> None:
    cfg = DetectionConfig(warmup=7, threshold=4.5, drift_accept_ms=3_600_000)
    states = DetectionStage(cfg).states
    first = states.new_series("BATTERY_PACK", "CELL_TEMPERATURE")
    for i in range(40):  # the first series learns: the prototype must not
        first.detector.process(30.0 + i % 3, 1_767_225_600_000 + i * 60_000, True)
    second = states.new_series("BATTERY_PACK", "CELL_TEMPERATURE")
    assert first.detector.n_learned == 40
    assert second.detector.to_state() == baseline_model(cfg).to_state()
    assert second.detector.n_learned == 0
    assert (second.detector.warmup, second.detector.threshold) == (7, 4.5)


def test_series_of_one_kind_share_their_hooks_and_other_kinds_get_their_own() -> None:
    stage = DetectionStage(DetectionConfig())
    states = stage.states
    a = states.new_series("BATTERY_PACK", "CELL_TEMPERATURE")
    b = states.new_series("BATTERY_PACK", "CELL_TEMPERATURE")
    assert states.hooks(a) is states.hooks(b)
    trend = next(s for s in stage.signals if isinstance(s, Trend))
    limited = next(
        s
        for s in (a, states.new_series("GRID_TRANSFORMER", "OIL_TEMPERATURE"))
        if trend.name in s.signals
    )
    plain = states.new_series("MACHINE", "GENERIC")
    assert trend.name not in plain.signals
    assert trend.on_series in states.hooks(limited)
    assert trend.on_series not in states.hooks(plain)
