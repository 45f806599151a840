"""Window arithmetic, statistics and lateness, checked against direct computation."""

from __future__ import annotations

import random
import statistics

import pytest

from streams.windows import PartitionWindows, window_start_for


def test_window_start_is_aligned_to_the_size() -> None:
    assert window_start_for(0, 60_000) == 0
    assert window_start_for(59_999, 60_000) == 0
    assert window_start_for(60_000, 60_000) == 60_000
    assert window_start_for(-1, 60_000) == -60_000


def test_statistics_match_direct_computation() -> None:
    rng = random.Random(7)
    windows = PartitionWindows(size_ms=10_000, lateness_ms=0)
    values: dict[int, list[tuple[int, float]]] = {}
    for offset in range(500):
        ts = offset * 97  # spans ~5 windows of 10 s
        value = rng.gauss(20, 3)
        assert windows.add("d1", "TEMPERATURE", value, ts, offset)
        values.setdefault(ts - ts % 10_000, []).append((ts, value))
    closed = windows.close_all()
    assert [w.start_ms for w in closed] == sorted(values)
    for w in closed:
        series = [v for _, v in values[w.start_ms]]
        assert w.count == len(series)
        assert w.mean == pytest.approx(statistics.fmean(series), rel=1e-12)
        assert w.std == pytest.approx(statistics.pstdev(series), rel=1e-9)
        assert (w.min, w.max) == (min(series), max(series))
        assert w.first == values[w.start_ms][0][1]
        assert w.last == values[w.start_ms][-1][1]
        assert w.end_ms - w.start_ms == 10_000


def test_first_and_last_follow_event_time_not_arrival() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=30_000)
    windows.add("d", "C", 2.0, 20_000, 0)
    windows.add("d", "C", 1.0, 10_000, 1)  # out of order, earlier event
    windows.add("d", "C", 3.0, 30_000, 2)
    (w,) = windows.close_all()
    assert (w.first, w.last, w.first_ts, w.last_ts) == (1.0, 3.0, 10_000, 30_000)


def test_window_closes_when_watermark_passes_its_end() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=10_000)
    windows.add("d", "C", 1.0, 1_000, 0)
    windows.add("d", "C", 1.0, 65_000, 1)  # watermark 55 s: first window still open
    assert windows.close_due() == []
    windows.add("d", "C", 1.0, 70_000, 2)  # watermark 60 s: closes [0, 60 s)
    closed = windows.close_due()
    assert [(w.start_ms, w.count) for w in closed] == [(0, 1)]


def test_late_reading_within_lateness_updates_its_window() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=10_000)
    windows.add("d", "C", 1.0, 59_000, 0)
    windows.add("d", "C", 1.0, 65_000, 1)
    assert windows.add("d", "C", 5.0, 30_000, 2)  # 35 s behind the newest, within 10 s of end
    windows.add("d", "C", 1.0, 80_000, 3)
    (first, *_) = windows.close_due()
    assert (first.start_ms, first.count, first.max) == (0, 2, 5.0)


def test_reading_beyond_lateness_is_refused_and_changes_nothing() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=10_000)
    windows.add("d", "C", 1.0, 10_000, 0)
    windows.add("d", "C", 1.0, 75_000, 1)  # watermark 65 s > end of first window
    assert not windows.add("d", "C", 99.0, 20_000, 2)
    closed = windows.close_due()
    assert [(w.start_ms, w.count, w.max) for w in closed] == [(0, 1, 1.0)]
    # Refused also after the window was closed and forgotten.
    assert not windows.add("d", "C", 99.0, 20_000, 3)


def test_min_open_offset_tracks_the_oldest_open_window() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=0)
    assert windows.min_open_offset() is None
    windows.add("a", "C", 1.0, 1_000, 10)
    windows.add("b", "C", 1.0, 61_000, 11)  # closes nothing yet (close_due not called)
    assert windows.min_open_offset() == 10
    windows.close_due()
    assert windows.min_open_offset() == 11
    windows.close_all()
    assert windows.min_open_offset() is None


def test_keys_are_separate_per_device_and_capability() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=0)
    for dev in ("a", "b"):
        for cap in ("X", "Y"):
            windows.add(dev, cap, 1.0, 1_000, 0)
    assert windows.open_count == 4
    assert len(windows.close_all()) == 4


@pytest.mark.parametrize(("size", "lateness"), [(0, 0), (1000, -1)])
def test_invalid_parameters_are_rejected(size: int, lateness: int) -> None:
    with pytest.raises(ValueError, match=r"window size|lateness"):
        PartitionWindows(size_ms=size, lateness_ms=lateness)
