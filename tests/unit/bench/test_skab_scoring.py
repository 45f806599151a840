"""SKAB's metrics against small hand-computed examples."""

from __future__ import annotations

import pytest

from bench.skab_scoring import (
    active_mask,
    binary_counts,
    nab_file_score,
    nab_scores,
    predicted_changepoints,
    scale_score,
)

S = 1_000  # ms
TS = [i * S for i in range(10)]
ANOMALY = [0, 0, 0, 1, 1, 1, 1, 0, 0, 0]


def test_an_alert_is_active_from_first_to_last_evidence_inclusive() -> None:
    assert active_mask(TS, [(4 * S, 8 * S)]) == [0, 0, 0, 0, 1, 1, 1, 1, 1, 0]
    assert active_mask(TS, [(0, 0), (9 * S, 20 * S)]) == [1, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    assert active_mask(TS, []) == [0] * 10


def test_point_wise_f1_far_mar_by_hand() -> None:
    predicted = active_mask(TS, [(4 * S, 8 * S)])
    c = binary_counts(ANOMALY, predicted)
    # rows 4-6 hit, 3 missed, 7-8 false, 0-2 and 9 right
    assert (c.tp, c.fn, c.fp, c.tn) == (3, 1, 2, 4)
    assert c.f1 == pytest.approx(3 / (3 + (1 + 2) / 2))  # 0.667
    assert c.far == pytest.approx(100 * 2 / 6)
    assert c.mar == pytest.approx(100 * 1 / 4)


def test_null_and_always_on_detectors() -> None:
    null = binary_counts(ANOMALY, [0] * 10)
    assert (null.f1, null.far, null.mar) == (0.0, 0.0, 100.0)
    always = binary_counts(ANOMALY, [1] * 10)
    assert always.f1 == pytest.approx(4 / (4 + 6 / 2))
    assert (always.far, always.mar) == (100.0, 0.0)
    with pytest.raises(ValueError, match="differ in length"):
        binary_counts([0, 1], [0])


def test_counts_add_up_over_files() -> None:
    total = binary_counts([1, 0], [1, 1])
    total += binary_counts([1, 1], [0, 1])
    assert (total.tp, total.fp, total.fn, total.tn) == (2, 1, 1, 0)


def test_predicted_changepoints_are_where_the_prediction_changes() -> None:
    assert predicted_changepoints([0, 0, 1, 1, 0]) == [0, 0, 1, 0, 1]
    assert predicted_changepoints([1, 1, 0]) == [1, 0, 1]  # an alert open from row 0
    assert predicted_changepoints([]) == []


def test_scale_is_a_tp_at_the_window_start_and_a_fp_at_its_end() -> None:
    assert scale_score(0.0, 1.0, -0.11) == pytest.approx(1.0)
    assert scale_score(1.0, 1.0, -0.11) == pytest.approx(-0.11)
    assert scale_score(0.5, 1.0, -0.11) == pytest.approx((1.0 - 0.11) / 2, abs=0.01)


def _cp(*rows: int, n: int = 200) -> list[int]:
    return [1 if i in rows else 0 for i in range(n)]


TS200 = [i * S for i in range(200)]


def test_nab_detection_at_the_changepoint_is_perfect_and_none_is_null() -> None:
    hit = nab_file_score(TS200, _cp(50), _cp(50))
    assert (hit.windows, hit.detected, hit.false_positives) == (1, 1, 0)
    assert nab_scores([hit]) == pytest.approx({"standard": 100, "low_fp": 100, "low_fn": 100})
    miss = nab_file_score(TS200, _cp(50), _cp())
    assert nab_scores([miss]) == pytest.approx({"standard": 0, "low_fp": 0, "low_fn": 0})


def test_nab_false_positive_outside_the_60s_window_by_hand() -> None:
    # window [50 s, 110 s]: a detection at its start, another at 150 s (outside)
    f = nab_file_score(TS200, _cp(50), _cp(50, 150))
    assert (f.detected, f.false_positives) == (1, 1)
    assert f.score["standard"] == pytest.approx(1.0 - 0.11)
    # normalised: 100 * (score - null) / (perfect - null), null = A_fn, perfect = A_tp
    assert nab_scores([f]) == pytest.approx(
        {
            "standard": 100 * (1 - 0.11 + 1) / 2,
            "low_fp": 100 * (1 - 0.22 + 1) / 2,
            "low_fn": 100 * (1 - 0.11 + 2) / 3,
        }
    )


def test_nab_overlapping_windows_cut_the_right_one_and_later_detections_are_ignored() -> None:
    # changepoints at 50 s and 80 s: windows [50, 110] and [110, 140]; detections at 60 s,
    # 70 s (both in the first window: one counts, the other is neither TP nor FP)
    f = nab_file_score(TS200, _cp(50, 80), _cp(60, 70))
    assert (f.windows, f.detected, f.false_positives) == (2, 1, 0)
    # the first window scores at position 10/60; the second is missed (A_fn = -1)
    assert f.score["standard"] == pytest.approx(scale_score(10 / 60, 1.0, -0.11) - 1.0)
    # over two files, the sums are normalised together
    both = nab_scores([f, nab_file_score(TS200, _cp(50), _cp(50))])
    assert both["standard"] == pytest.approx(
        100 * (f.score["standard"] + 1.0 - (-3.0)) / (3.0 - (-3.0))
    )
