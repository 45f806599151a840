"""The device window with ``window_model="hst"`` (River ``HalfSpaceTrees`` scores it).

Same feed as ``test_detection_window.py``: readings of one device straight to
``DetectionStage.observe``, one a minute per series.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from streams.detect import WindowMahalanobis
from streams.detect.multivariate import WindowHSTResiduals
from streams.detection import DetectionConfig, new_window_model
from tests.unit.streams.test_detection_window import MIN, START, _feed, _machine, _stage


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window_model", "isolation_forest"),
        ("window_hst_threshold", 1.5),
        ("window_hst_trees", 0),
        ("window_hst_size", 1),
    ],
)
def test_config_validation_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"DetectionConfig.{field} is out of range"):
        DetectionConfig(**{field: value})  # type: ignore[arg-type]


def test_the_factory_builds_the_model_the_config_names() -> None:
    assert type(new_window_model(DetectionConfig())) is WindowMahalanobis
    hst = new_window_model(DetectionConfig(window_model="hst", window_hst_threshold=0.85))
    assert isinstance(hst, WindowHSTResiduals)
    assert hst.threshold == 0.85
    assert hst.name == "window_hst"


def _step_at(onset: int, size: float) -> Callable[[int], float]:
    return lambda i: 0.0 if i < onset else size


ONSET = 2 * 1_440 + 600  # two days to learn the machine, then bearing temperature and
# vibration step together (+2 degC, +0.2 mm/s) while the flow that explains them does not


def test_hst_device_raises_anomaly_window_for_two_signals_stepping_out_of_line() -> None:
    # the defaults of window_model="hst": HalfSpaceTrees judges the window, the drift
    # CUSUM on the Mahalanobis residuals kept beside it runs too
    stage = _stage(window_model="hst")
    alerts, _ = _feed(stage, "m1", "MACHINE", _machine(_step_at(ONSET, 2.0)), range(ONSET + 60))
    dev = stage.devices[("default", "m1")]
    assert (
        isinstance(dev.signals["window"].model, WindowHSTResiduals)
        and dev.signals["window"].model.is_warm
    )
    assert [a["rule"] for a in alerts][:1] == ["anomaly:window"]
    assert START + ONSET * MIN < alerts[0]["first_seen"] <= START + (ONSET + 30) * MIN


def test_hst_score_alone_raises_anomaly_window() -> None:
    # the drift CUSUM switched off: the HalfSpaceTrees score decides. With a steady load
    # the healthy windows of this machine score <= 0.92, the stepped ones >= 0.98 (with the
    # wandering load of test_detection_window.py they do not separate: healthy windows
    # score up to 0.987, the step 0.96; see docs/detection.md)
    stage = _stage(window_model="hst", drift_threshold=1e9)
    alerts, anomalies = _feed(
        stage, "m1", "MACHINE", _machine(_step_at(ONSET, 2.0)), range(ONSET + 60)
    )
    assert [a["rule"] for a in alerts][:1] == ["anomaly:window"]
    assert "unusual together" in alerts[0]["summary"]
    assert START + ONSET * MIN < alerts[0]["first_seen"] <= START + (ONSET + 30) * MIN
    flagged = [a for a in anomalies if a["detector"] == "window_hst" and a["is_anomaly"]]
    assert len(flagged) >= 2
    assert all(DetectionConfig().window_hst_threshold <= a["score"] <= 1.0 for a in flagged)


def test_hst_window_model_warms_up_again_after_a_checkpoint() -> None:
    """HalfSpaceTrees' trees are not checkpointed (River objects that only pickle): after a
    restore the HST score warms up again, while the Mahalanobis model beside it (the drift
    CUSUM's residuals) continues identically."""
    stage = _stage(window_model="hst")
    _feed(stage, "m1", "MACHINE", _machine(lambda i: 0.0), range(1_440 + 120))
    records = stage.checkpoint()
    other = _stage(window_model="hst")
    assert other.load_checkpoint([(key, value) for _, key, value in records]) == 1
    before = stage.devices[("default", "m1")].signals["window"].model
    after = other.devices[("default", "m1")].signals["window"].model
    assert isinstance(before, WindowHSTResiduals) and isinstance(after, WindowHSTResiduals)
    assert before.is_warm and before.n_learned > 0
    assert after.n_learned == after.hst.n_learned == 0 and not after.is_warm
    assert after.features == before.features
    assert after.residual_model.n_learned == before.residual_model.n_learned
    x = dict.fromkeys(before.features, 0.5)
    assert after.score_and_residuals(x)[1] == before.score_and_residuals(x)[1]
    after.learn_one(x, 0)
    before.learn_one(x, 0)
    y = dict.fromkeys(before.features, 3.0)
    assert (
        after.score_and_residuals(y)[1] == before.score_and_residuals(y)[1]
    )  # the residual model continues
    for _ in range(after.warmup - 1):
        after.learn_one(x, 0)
    assert after.is_warm and math.isfinite(after.score_one(y, 0))
