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
    windows.add("a", "C", 1.0, 61_000, 11)  # closes nothing yet (close_due not called)
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


# -- each device is its own clock ---------------------------------------------------------
def test_a_device_ahead_never_makes_another_late() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=10_000)
    windows.add("ahead", "C", 1.0, 10 * 3_600_000, 0)  # ten hours ahead of the other device
    for i in range(5):  # the lagging device's readings all land and close on its own time
        assert windows.add("lagging", "C", float(i), i * 30_000, i + 1)
    closed = windows.close_due()
    assert [(w.device_id, w.start_ms, w.count) for w in closed] == [("lagging", 0, 2)]
    assert windows.watermark_ms("lagging") == 110_000
    assert windows.watermark_ms("ahead") == 10 * 3_600_000 - 10_000


def test_interleaved_devices_with_skewed_clocks_give_the_same_windows_as_alone() -> None:
    skew = {"a": 0, "b": -45 * 60_000, "c": 7 * 60_000 + 13_000}  # minutes apart
    together = PartitionWindows(size_ms=60_000, lateness_ms=5_000)
    alone = {d: PartitionWindows(size_ms=60_000, lateness_ms=5_000) for d in skew}
    got: list[tuple[str, int, int, float]] = []
    want: list[tuple[str, int, int, float]] = []
    offset = 0
    for t in range(0, 600_000, 7_000):
        for dev, off in skew.items():
            ts = 10 * 3_600_000 + t + off
            assert together.add(dev, "C", float(t), ts, offset)
            assert alone[dev].add(dev, "C", float(t), ts, offset)
            offset += 1
        got += [(w.device_id, w.start_ms, w.count, w.mean) for w in together.close_due()]
        for w_alone in alone.values():
            want += [(w.device_id, w.start_ms, w.count, w.mean) for w in w_alone.close_due()]
    assert sorted(got) == sorted(want)
    assert len(got) >= 3 * 8


def test_a_gateway_flush_of_an_hour_old_buffer_is_on_time() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=10_000)
    live_hour = 5 * 3_600_000
    for i in range(60):
        windows.add("live", "C", 1.0, live_hour + i * 1_000, i)
    # The gateway was offline: its device's readings of an hour ago arrive now, in order.
    accepted = [
        windows.add("buffered", "C", 2.0, live_hour - 3_600_000 + i * 1_000, 100 + i)
        for i in range(600)
    ]
    assert all(accepted)
    closed = [w for w in windows.close_due() if w.device_id == "buffered"]
    assert [w.count for w in closed] == [60] * 9  # the tenth minute is still open


def test_idle_devices_close_on_the_wall_clock_only() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=0)
    windows.set_clock(100.0)
    windows.add("quiet", "C", 1.0, 1_000, 0)
    windows.add("busy", "C", 1.0, 1_000, 1)
    windows.set_clock(125.0)
    windows.add("busy", "C", 1.0, 2_000, 2)
    assert windows.close_idle(now_s=129.0, idle_s=30.0) == []
    closed = windows.close_idle(now_s=131.0, idle_s=30.0)
    assert [(w.device_id, w.count) for w in closed] == [("quiet", 1)]
    assert windows.open_count == 1
    assert not windows.add("quiet", "C", 5.0, 3_000, 3)  # its window was emitted: late
    # Forgotten after ten idle timeouts with nothing open: the clock starts afresh.
    windows.close_idle(now_s=125.0 + 300.0, idle_s=30.0)
    assert windows.device_count == 0


def test_only_the_first_window_a_device_closes_is_fresh() -> None:
    windows = PartitionWindows(size_ms=60_000, lateness_ms=0)
    for i, ts in enumerate((1_000, 61_000, 121_000, 181_000)):
        windows.add("d", "C", 1.0, ts, 10 + i)
    closed = windows.close_due()
    assert [(w.start_ms, w.fresh, w.first_offset) for w in closed] == [
        (0, True, 10),
        (60_000, False, 11),
        (120_000, False, 12),
    ]


def test_a_seeded_clock_judges_lateness_as_the_previous_owner_did() -> None:
    # The previous owner had seen the device up to 10:05 (its checkpoint); the device's
    # clock then jumped back 3 minutes. A restarted worker must not reopen 10:02-10:03.
    windows = PartitionWindows(size_ms=60_000, lateness_ms=10_000)
    windows.seed("d", 605_000)
    assert windows.watermark_ms("d") == 595_000
    assert windows.add("d", "T", 1.0, 182_000, 7) is False  # closed by the previous owner
    assert windows.open_count == 0
    assert windows.add("d", "T", 2.0, 600_000, 8) is True  # still open at 10:05 - 10 s
    windows.seed("d", 0)  # a clock that runs already is kept
    assert windows.watermark_ms("d") == 595_000
    # An unseeded device opens any window: what the restart did before.
    assert windows.add("e", "T", 3.0, 182_000, 9) is True
