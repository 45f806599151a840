"""Hourly and daily rollups of the minute windows: ``aggregates_1h`` and ``aggregates_1d``.

Operators read long ranges (a month of a fleet) from these instead of the minute
``aggregates``. A rollup row holds states that combine exactly: the number of minute
windows, ``count``, ``sum``, ``sum_sq`` (sum of squares), ``min``, ``max``, the first and
last value with their times, plus ``mean`` and ``std`` (population) derived from them.

Why not an insert-triggered materialized view: ``aggregates`` is a ReplacingMergeTree. A
window corrected by late readings is inserted again (with a larger ``count``), and a replay
after a crash inserts the same rows again; both collapse in ``aggregates`` but an insert
trigger sees every insert and would add each window twice. So the rollups are
ReplacingMergeTree tables too (version ``count``), and the sink *recomputes* the rollup rows
of every (series, hour) and (series, day) that an ``aggregates`` insert touched, from
``aggregates FINAL`` (hours) and ``aggregates_1h FINAL`` (days), right after that insert.
A recomputed row replaces the earlier one; replays recompute the same row again. The result
is exact whatever order corrections and replays arrive in (see docs/storage.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from core.settings import Settings
from sinks.bind_chunks import bounded_chunks

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "ROLLUPS",
    "RollupKey",
    "backfill_rollups",
    "period_runs",
    "refresh_rollups",
    "rollup_create_statements",
]

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

# (tenant_id, device_id, capability, source window_size, window_start ms of the minute window)
RollupKey = tuple[str, str, str, str, int]

_TS = "DateTime64(3, 'UTC')"
_LC = "LowCardinality(String)"
_TIME = "CODEC(DoubleDelta, ZSTD(1))"
_FLOAT = "CODEC(Gorilla(8), ZSTD(1))"

ROLLUPS: dict[str, tuple[str, int]] = {
    # table: (window_size label, length in ms)
    "aggregates_1h": ("1h", HOUR_MS),
    "aggregates_1d": ("1d", DAY_MS),
}

_COLUMNS = (
    ("window_start", f"{_TS} {_TIME}"),
    ("window_end", f"{_TS} {_TIME}"),
    ("window_size", _LC),
    ("source_window_size", _LC),
    ("tenant_id", _LC),
    ("device_id", "String CODEC(ZSTD(1))"),
    ("device_type", _LC),
    ("capability", _LC),
    ("unit", _LC),
    ("windows", "UInt32 CODEC(T64, ZSTD(1))"),
    ("count", "UInt64 CODEC(T64, ZSTD(1))"),
    ("sum", f"Float64 {_FLOAT}"),
    ("sum_sq", f"Float64 {_FLOAT}"),
    ("mean", f"Float64 {_FLOAT}"),
    ("std", f"Float64 {_FLOAT}"),
    ("min", f"Float64 {_FLOAT}"),
    ("max", f"Float64 {_FLOAT}"),
    ("first", f"Float64 {_FLOAT}"),
    ("last", f"Float64 {_FLOAT}"),
    ("first_ts", f"{_TS} {_TIME}"),
    ("last_ts", f"{_TS} {_TIME}"),
)
_NAMES = ", ".join(name for name, _ in _COLUMNS)
_KEY = "tenant_id, device_id, capability, source_window_size, window_start"


def rollup_create_statements(settings: Settings) -> list[str]:
    """``CREATE TABLE IF NOT EXISTS`` of both rollups (retention ``rollups_ttl_days``).

    >>> sql = rollup_create_statements(Settings())[0]
    >>> sql.splitlines()[0], "ReplacingMergeTree(count)" in sql
    ('CREATE TABLE IF NOT EXISTS aggregates_1h (', True)
    """
    cols = ",\n  ".join(f"`{name}` {ctype}" for name, ctype in _COLUMNS)
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (\n  {cols},\n"
        f"  `stored_at` {_TS} DEFAULT now64(3) {_TIME}\n)\n"
        "ENGINE = ReplacingMergeTree(count)\n"
        "PARTITION BY toYYYYMM(window_start)\n"
        f"ORDER BY ({_KEY})\n"
        f"TTL toDateTime(stored_at) + INTERVAL {settings.rollups_ttl_days} DAY"
        for table in ROLLUPS
    ]


# The hour (day) rows of the named series and periods, from the minute windows (hours).
# A series' device_type and unit are taken from its latest window.
_FROM_MINUTES = """
INSERT INTO {table} ({names})
SELECT fromUnixTimestamp64Milli(p, 'UTC'), fromUnixTimestamp64Milli(p + {{period:Int64}}, 'UTC'),
       {{label:String}}, window_size, tenant_id, device_id,
       argMax(device_type, window_start), capability, argMax(unit, window_start),
       count(), sum(count) AS n, sum(mean * count) AS s,
       sum(count * (std * std + mean * mean)) AS ss, s / n,
       sqrt(greatest(ss / n - (s / n) * (s / n), 0)),
       min(min), max(max), argMin(first, first_ts), argMax(last, last_ts),
       min(first_ts), max(last_ts)
FROM aggregates FINAL
WHERE window_start >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC')
  AND window_start < fromUnixTimestamp64Milli({{hi:Int64}}, 'UTC')
  AND {where}
GROUP BY tenant_id, device_id, capability, window_size,
         intDiv(toUnixTimestamp64Milli(window_start), {{period:Int64}}) * {{period:Int64}} AS p
"""
_FROM_HOURS = """
INSERT INTO {table} ({names})
SELECT fromUnixTimestamp64Milli(p, 'UTC'), fromUnixTimestamp64Milli(p + {{period:Int64}}, 'UTC'),
       {{label:String}}, source_window_size, tenant_id, device_id,
       argMax(device_type, window_start), capability, argMax(unit, window_start),
       sum(windows), sum(count) AS n, sum(sum) AS s, sum(sum_sq) AS ss, s / n,
       sqrt(greatest(ss / n - (s / n) * (s / n), 0)),
       min(min), max(max), argMin(first, first_ts), argMax(last, last_ts),
       min(first_ts), max(last_ts)
FROM aggregates_1h FINAL
WHERE window_start >= fromUnixTimestamp64Milli({{lo:Int64}}, 'UTC')
  AND window_start < fromUnixTimestamp64Milli({{hi:Int64}}, 'UTC')
  AND {where}
GROUP BY tenant_id, device_id, capability, source_window_size,
         intDiv(toUnixTimestamp64Milli(window_start), {{period:Int64}}) * {{period:Int64}} AS p
"""
# The series named, over the whole range of periods the batch touched: a prefix of the
# sorting key and a range of the next column, so the primary index prunes the read (a
# filter on (series, period) tuples would read the whole partition). A period recomputed
# that the batch did not touch comes out as it was.
_IN_SERIES = (
    "(tenant_id, device_id, capability, {size}) "
    "IN {{series:Array(Tuple(String, String, String, String))}}"
)


def _statement(table: str, keyed: bool) -> str:
    hourly = table == "aggregates_1h"
    size = "window_size" if hourly else "source_window_size"
    where = _IN_SERIES.format(size=size) if keyed else "1"
    template = _FROM_MINUTES if hourly else _FROM_HOURS
    return template.format(table=table, names=_NAMES, where=where)


def refresh_rollups(
    client: Any,
    windows: Iterable[RollupKey] | None = None,
    lo_ms: int = 0,
    hi_ms: int = 0,
    *,
    whole_periods: int | None = None,
) -> None:
    """Recompute the rollup rows of the hours and days that ``windows`` fall in.

    ``windows`` are (tenant, device, capability, window_size, window_start ms) of minute
    windows just written to ``aggregates``. Per run of consecutive periods
    (:func:`period_runs`), the statement names the run's series when they fit in one bound
    parameter (``sinks.bind_chunks.BIND_BUDGET``); a fleet's minute names more than that
    (the series of 800 devices take 20 pieces, ~2 s of statements), so a run of at most
    :data:`WHOLE_PERIODS` periods is recomputed for every series instead (~0.1 s: one read
    of the period, which such a batch covers anyway), and a longer run — late windows of
    many series over days — statement by piece, each reading only its series
    (``whole_periods`` overrides :data:`WHOLE_PERIODS`; 0: always by piece).
    ``None`` recomputes every period whose start lies in ``[lo_ms, hi_ms)`` (a backfill:
    ``lo_ms``/``hi_ms`` must then be whole days, and the range should span at most
    ``max_partitions_per_insert_block`` months).
    """
    wins = None if windows is None else list(windows)
    if wins is not None and not wins:
        return
    whole = WHOLE_PERIODS if whole_periods is None else whole_periods
    for table, (label, period) in ROLLUPS.items():
        runs = [(lo_ms, hi_ms, None)] if wins is None else period_runs(wins, period)
        for lo, hi, series in runs:
            params: dict[str, Any] = {"period": period, "label": label, "lo": lo, "hi": hi}
            pieces = None if series is None else list(bounded_chunks(series))
            if pieces is None or (len(pieces) > 1 and hi - lo <= whole * period):
                client.command(_statement(table, False), parameters=params)
                continue
            for piece in pieces:
                params["series"] = piece
                client.command(_statement(table, True), parameters=params)


WHOLE_PERIODS = 2
"""Runs this many periods long or shorter are recomputed for every series when their series
do not fit in one statement (a minute of a fleet spans one hour, two at an hour's end)."""


def period_runs(
    windows: Iterable[RollupKey], period: int
) -> list[tuple[int, int, list[tuple[str, str, str, str]] | None]]:
    """The periods of ``windows`` as runs of consecutive periods: ``(lo, hi, series)``.

    One statement per run reads only that run's range of its series (live windows and a
    correction a week old are two small reads, not a week of every series).

    >>> period_runs([("t", "a", "C", "1m", 60_000), ("t", "b", "C", "1m", 3_700_000),
    ...              ("t", "a", "C", "1m", 90_000_000)], HOUR_MS)  # doctest: +NORMALIZE_WHITESPACE
    [(0, 7200000, [('t', 'a', 'C', '1m'), ('t', 'b', 'C', '1m')]),
     (90000000, 93600000, [('t', 'a', 'C', '1m')])]
    """
    by_period: dict[int, set[tuple[str, str, str, str]]] = {}
    for t, d, c, s, start in windows:
        by_period.setdefault(start - start % period, set()).add((t, d, c, s))
    runs: list[tuple[int, int, list[tuple[str, str, str, str]] | None]] = []
    lo = hi = -1
    series: set[tuple[str, str, str, str]] = set()
    for p in sorted(by_period):
        if p != hi:  # a gap: close the run so far
            if series:
                runs.append((lo, hi, sorted(series)))
            lo, series = p, set()
        hi = p + period
        series |= by_period[p]
    runs.append((lo, hi, sorted(series)))
    return runs


def backfill_rollups(client: Any, months_per_insert: int = 12) -> int:
    """Fill the rollups from every window already in ``aggregates`` (a store that existed
    before the rollups did); returns the number of months recomputed. Idempotent.

    Runs ``months_per_insert`` months per statement (each insert stays within the server's
    ``max_partitions_per_insert_block``).
    """
    n, lo, hi = client.query(
        "SELECT count(), toUnixTimestamp64Milli(min(window_start)), "
        "toUnixTimestamp64Milli(max(window_start)) FROM aggregates"
    ).result_rows[0]
    if not n:
        return 0
    first = _month_start(int(lo))
    months = 0
    while first <= hi:
        last = _month_start(first, months_per_insert)
        refresh_rollups(client, None, first, last)
        months += months_per_insert
        first = last
    return months


def _month_start(ms: int, add: int = 0) -> int:
    """Epoch ms of the first day (UTC) of ``ms``'s month, ``add`` months later.

    >>> _month_start(1_767_225_600_000 + 5 * DAY_MS, 1)  # 2026-01-06 -> 2026-02-01
    1769904000000
    """
    d = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
    n = d.year * 12 + d.month - 1 + add
    return int(dt.datetime(n // 12, n % 12 + 1, 1, tzinfo=dt.UTC).timestamp() * 1000)
