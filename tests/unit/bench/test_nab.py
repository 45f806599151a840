"""NAB benchmark: loading, NAB's standard-profile scorer, window metrics, time layout.

Expected values are worked out by hand from NAB's definitions. Two identities help:
2*sigmoid(x) - 1 = tanh(x/2), so NAB's scaled sigmoid S(p) = 2*sigmoid(-5p) - 1 = -tanh(2.5p),
and the largest TP value S(-1) = tanh(2.5).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.nab import (
    firing_first_seen,
    layout_offsets,
    load_corpus,
    parse_nab_time,
    reading_dict,
    resolve_nab_dir,
)
from bench.nab_scoring import (
    STANDARD,
    FileScore,
    corpus_normalized,
    detection_rows,
    probation_length,
    scaled_sigmoid,
    score_file,
    window_metrics,
    window_rows,
)
from core.errors import EnviroStreamError
from core.settings import load_settings
from schemas import AvroCodec

HOUR = 3_600_000


# -- scaled sigmoid and probation ----------------------------------------------------------
def test_scaled_sigmoid_at_its_landmarks() -> None:
    assert scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)  # window start
    assert scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)  # half-way
    assert scaled_sigmoid(0.0) == 0.0  # window end
    assert scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert scaled_sigmoid(3.0) == -1.0  # "well behind the window"
    assert scaled_sigmoid(10.0) == -1.0


def test_probation_is_15_percent_capped_at_750_rows() -> None:
    assert probation_length(100) == 15
    assert probation_length(1882) == 282  # floor(282.3)
    assert probation_length(4032) == 604  # floor(604.8)
    assert probation_length(5000) == 750
    assert probation_length(22695) == 750


# -- score of one file (100 rows: probation = rows 0..14; one window = rows 40..49) ---------
ROWS = 100
WIN = [(40, 49)]


def test_no_detection_scores_the_null_detector() -> None:
    s = score_file(ROWS, WIN, [])
    assert s == FileScore(
        raw=-1.0, null=-1.0, perfect=1.0, tp_windows=0, fn_windows=1, fp=0, scored_windows=1
    )


def test_detection_at_window_start_scores_exactly_a_tp() -> None:
    s = score_file(ROWS, WIN, [40])
    assert s.raw == pytest.approx(1.0)
    assert (s.tp_windows, s.fn_windows, s.fp) == (1, 0, 0)


def test_detection_inside_window_is_weighted_by_position() -> None:
    # row 44: position -(49 - 44 + 1)/10 = -0.6, S = tanh(1.5), divided by S(-1) = tanh(2.5)
    assert score_file(ROWS, WIN, [44]).raw == pytest.approx(math.tanh(1.5) / math.tanh(2.5))
    # last row of the window: position -1/10, S = tanh(0.25)
    assert score_file(ROWS, WIN, [49]).raw == pytest.approx(math.tanh(0.25) / math.tanh(2.5))


def test_only_the_earliest_detection_in_a_window_counts() -> None:
    s = score_file(ROWS, WIN, [47, 40, 44])
    assert s.raw == pytest.approx(1.0)
    assert (s.tp_windows, s.fp) == (1, 0)


def test_detections_in_the_probationary_period_are_ignored() -> None:
    assert score_file(ROWS, WIN, [0, 5, 14]) == score_file(ROWS, WIN, [])
    assert score_file(ROWS, WIN, [15]).fp == 1  # first scored row


def test_false_positive_before_any_window_costs_the_full_fp_weight() -> None:
    s = score_file(ROWS, WIN, [20])
    assert s.raw == pytest.approx(-1.0 - 0.11)
    assert (s.fp, s.fn_windows) == (1, 1)


def test_false_positive_after_a_window_is_weighted_by_distance() -> None:
    # row 50: |49 - 50| / (10 - 1) = 1/9 past the window: S = -tanh(2.5/9), times 0.11
    s = score_file(ROWS, WIN, [40, 50])
    assert s.raw == pytest.approx(1.0 - 0.11 * math.tanh(2.5 / 9))
    # row 76: 27/9 = 3 window widths past: full cost
    assert score_file(ROWS, WIN, [40, 76]).raw == pytest.approx(1.0 - 0.11)
    # row 58: exactly one window width past: S(1) = -tanh(2.5)
    assert score_file(ROWS, WIN, [40, 58]).raw == pytest.approx(1.0 - 0.11 * math.tanh(2.5))


def test_fp_is_measured_from_the_closest_preceding_window() -> None:
    windows = [(20, 29), (60, 69)]  # both width 10
    # row 72: 3/9 past the second window (not 43/9 past the first)
    s = score_file(ROWS, windows, [20, 60, 72])
    assert s.raw == pytest.approx(2.0 - 0.11 * math.tanh(2.5 * 3 / 9))
    # row 35 is between them: 6/9 past the first
    s = score_file(ROWS, windows, [35])
    assert s.raw == pytest.approx(-2.0 - 0.11 * math.tanh(2.5 * 6 / 9))


def test_window_inside_probation_is_not_scored_but_still_anchors_fps() -> None:
    windows = [(2, 10)]  # 9 rows, all before row 15
    s = score_file(ROWS, windows, [])
    assert (s.raw, s.null, s.scored_windows) == (0.0, 0.0, 0)
    assert s.perfect == 1.0  # NAB's normalisation counts every labelled window
    # row 20: |10 - 20| / (9 - 1) = 1.25 past the window
    assert score_file(ROWS, windows, [20]).raw == pytest.approx(-0.11 * math.tanh(3.125))


def test_weights_are_nab_standard_profile() -> None:
    assert (STANDARD.tp_weight, STANDARD.fp_weight, STANDARD.fn_weight) == (1.0, 0.11, 1.0)


# -- corpus normalisation ------------------------------------------------------------------
def test_normalized_score_is_0_for_null_100_for_perfect_and_linear_between() -> None:
    windows_a, windows_b = [(40, 49)], [(20, 29), (60, 69)]
    null = [score_file(ROWS, windows_a, []), score_file(ROWS, windows_b, [])]
    perfect = [score_file(ROWS, windows_a, [40]), score_file(ROWS, windows_b, [20, 60])]
    assert corpus_normalized(null) == 0.0
    assert corpus_normalized(perfect) == pytest.approx(100.0)
    # one of three windows found at its start: raw -1, null -3, perfect 3 -> 100 * 2/6
    half = [score_file(ROWS, windows_a, [40]), score_file(ROWS, windows_b, [])]
    assert corpus_normalized(half) == pytest.approx(100 / 3)
    # a lone far false positive only: 100 * (-0.11) / 6
    fp_only = [score_file(ROWS, windows_a, [20]), score_file(ROWS, windows_b, [])]
    assert corpus_normalized(fp_only) == pytest.approx(-11 / 6)


# -- rows from times -----------------------------------------------------------------------
TS = [i * 10 for i in range(10)]  # 0, 10, ..., 90


def test_windows_map_to_the_rows_they_cover() -> None:
    assert window_rows(TS, [(10, 30)]) == [(1, 3)]
    assert window_rows(TS, [(15, 45)]) == [(2, 4)]  # rows inside the limits
    assert window_rows(TS, [(91, 99)]) == []  # holds no row


def test_detections_map_to_the_row_at_or_before_them() -> None:
    assert detection_rows(TS, [20, 25, 29, 90, 500]) == [2, 9]
    assert detection_rows(TS, [-5]) == []


# -- window metrics ------------------------------------------------------------------------
def test_window_precision_recall_and_delay() -> None:
    ts = [i * HOUR for i in range(ROWS)]
    windows = [(40, 49), (60, 69)]
    m = window_metrics(ts, windows, [5, 20, 42, 45])  # row 5 is in probation
    assert (m.detections, m.in_window, m.detected_windows) == (3, 2, 1)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(1 / 2)
    assert m.delays_ms == [2 * HOUR]
    assert m.median_delay_hours == pytest.approx(2.0)


def test_window_metrics_without_detections() -> None:
    m = window_metrics([i * HOUR for i in range(ROWS)], [(40, 49)], [])
    assert (m.precision, m.recall, m.median_delay_hours) == (None, 0.0, None)


# -- alerts to detections ------------------------------------------------------------------
def test_detections_are_the_first_firing_record_of_each_alert() -> None:
    records = [
        {"alert_id": "a", "state": "FIRING", "first_seen": 100, "version": 1},
        {"alert_id": "a", "state": "FIRING", "first_seen": 100, "version": 2},
        {"alert_id": "a", "state": "RESOLVED", "first_seen": 100, "version": 3},
        {"alert_id": "b", "state": "FIRING", "first_seen": 700, "version": 1},
    ]
    seen: dict[str, int] = {}
    firing_first_seen(records[:2], seen)
    firing_first_seen(records[2:], seen)
    assert seen == {"a": 100, "b": 700}


def test_reading_dict_is_a_valid_universal_sensor_reading() -> None:
    r = reading_dict("nyc_taxi", 3, 1_404_172_800_000, 10844.0)
    assert r["reading_id"] == "nyc_taxi/generic@1404172800000"
    assert (r["sensor_id"], r["capability"], r["sequence"]) == ("nyc_taxi/generic", "GENERIC", 3)
    codec = AvroCodec()
    blob = codec.encode_batch("UniversalSensorReading", [r])[0]
    assert codec.decode(blob, "UniversalSensorReading")["value"] == 10844.0


# -- layout on one time axis ---------------------------------------------------------------
def _file(tmp_path: Path, name: str, rows: list[str]) -> Path:
    path = tmp_path / "realKnownCause" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("timestamp,value\n" + "".join(r + "\n" for r in rows))
    return path


def _corpus(tmp_path: Path) -> Path:
    _file(tmp_path, "b.csv", ["2014-01-01 00:00:00,1", "2014-01-01 01:00:00,2.5"])
    _file(tmp_path, "a.csv", ["2013-12-31 12:00:00,7", "2014-01-01 12:00:00,8"])
    (tmp_path / "labels").mkdir()
    windows = {
        "realKnownCause/a.csv": [["2014-01-01 00:00:00.000000", "2014-01-01 12:00:00.000000"]],
        "realKnownCause/b.csv": [],
    }
    (tmp_path / "labels" / "combined_windows.json").write_text(json.dumps(windows))
    return tmp_path


def test_load_corpus_reads_times_as_utc_ms_values_and_windows(tmp_path: Path) -> None:
    a, b = load_corpus(_corpus(tmp_path))
    assert (a.name, a.device, b.name) == ("realKnownCause/a.csv", "a", "realKnownCause/b.csv")
    jan1 = 1_388_534_400_000  # 2014-01-01T00:00:00Z
    assert a.timestamps == [jan1 - 12 * HOUR, jan1 + 12 * HOUR]
    assert a.values == [7.0, 8.0]
    assert a.windows == [(jan1, jan1 + 12 * HOUR)]
    assert b.timestamps == [jan1, jan1 + HOUR] and b.values == [1.0, 2.5] and b.windows == []
    assert parse_nab_time("2014-01-01 00:00:00.000000") == jan1


def test_layout_starts_each_file_a_day_after_the_previous_ends(tmp_path: Path) -> None:
    a, b = load_corpus(_corpus(tmp_path))
    day = 86_400_000
    offsets = layout_offsets([a, b])
    # a ends 2014-01-01 12:00; b must start 2014-01-02 12:00, it starts 2014-01-01 00:00
    assert offsets == [0, day + 12 * HOUR]
    assert b.timestamps[0] + offsets[1] == a.timestamps[-1] + day


def test_nab_dir_option_beats_the_setting_and_a_missing_dir_names_the_option(
    tmp_path: Path,
) -> None:
    root = _corpus(tmp_path / "nab")
    from_env = load_settings({"ENVIROSTREAM_NAB_DIR": str(root)})
    assert resolve_nab_dir(None, from_env) == root.resolve()
    with pytest.raises(EnviroStreamError, match="--nab-dir"):
        resolve_nab_dir(tmp_path / "missing", from_env)
    with pytest.raises(EnviroStreamError, match="ENVIROSTREAM_NAB_DIR"):
        resolve_nab_dir(None, load_settings({"ENVIROSTREAM_NAB_DIR": str(tmp_path / "no")}))
    assert resolve_nab_dir(root, load_settings({})) == root.resolve()
