"""``envirostream bench rollups``: the rollup refresh of a fleet's minute, two ways.

On a private store, every minute of ``--minutes`` inserts one minute window per series of
the built-in ``--devices`` fleet into ``aggregates`` (as the worker's sink does), then
times :func:`sinks.rollups.refresh_rollups` on that minute both ways, in alternating order:

* **by piece**: statements naming the series, in pieces of at most
  ``sinks.bind_chunks.BIND_BUDGET`` bytes (``whole_periods=0``);
* **whole period** (the default for a run of at most ``WHOLE_PERIODS`` periods whose series
  need more than one piece): one statement per table recomputing the hour (the day) for
  every series.

Both write the same rows (a recompute replaces its row). The run checks that the hourly
rollup counts every window inserted. The last line is JSON.
"""

from __future__ import annotations

import json
import time
from typing import Any

from core.errors import EnviroStreamError
from core.settings import Settings
from infra.harness import discard_private, private_settings
from infra.store import start_store, stop_store
from producers.models import KINDS
from producers.simulator import SimulationConfig
from sinks.bind_chunks import bounded_chunks
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from sinks.ddl import TABLES
from sinks.rollups import refresh_rollups

__all__ = ["fleet_series", "run_rollup_refresh_bench"]

T0 = 1_767_240_000_000  # 2026-01-01T04:00Z: the minutes stay in one hour
MINUTE = 60_000


def fleet_series(devices: int) -> list[tuple[str, str, str, str]]:
    """(tenant, device, capability, device type) of every series of the built-in fleet."""
    fleet = SimulationConfig(devices=devices, kinds=KINDS, seed=1).fleet()
    tick = fleet.tick(T0)
    seen = dict.fromkeys(zip(tick.device_ids, tick.capabilities, tick.device_types, strict=True))
    return [("default", d, c, t) for d, c, t in seen]


def _minute(series: list[tuple[str, str, str, str]], start: int) -> list[list[Any]]:
    rows = [
        [start, start + MINUTE, "1m", tenant, device, dtype, cap, "u", 60, 1.0, 0.5, 1.5, 0.2,
         0.9, 1.1, start + 500, start + 59_500]
        for tenant, device, cap, dtype in series
    ]  # fmt: skip
    return [list(c) for c in zip(*rows, strict=True)]


def _median(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


def run_rollup_refresh_bench(
    base: Settings, devices: int = 800, minutes: int = 4
) -> dict[str, Any]:
    if devices < 1 or not 1 <= minutes <= 59:
        msg = "bench rollups: --devices must be positive and --minutes within 1-59"
        raise EnviroStreamError(msg)
    series = fleet_series(devices)
    keys = [(t, d, c, "1m") for t, d, c, _ in series]
    pieces = len(list(bounded_chunks(keys)))
    print(
        f"bench rollups: {devices:,} devices = {len(series):,} series "
        f"({pieces} pieces of bound series), {minutes} minutes",
        flush=True,
    )
    settings = private_settings(base, "envirostream-bench-rollups-")
    names = list(TABLES["aggregates"].column_names)
    by_piece: list[float] = []
    whole: list[float] = []
    start_store(settings)
    try:
        client = get_client(settings)
        ClickHouseSink(client, settings.model_copy(update={"rollups_refresh": False})).setup()
        for m in range(minutes):
            start = T0 + m * MINUTE
            client.insert("aggregates", _minute(series, start), column_names=names,
                          column_oriented=True)  # fmt: skip
            windows = [(*k, start) for k in keys]
            order = ((0, by_piece), (None, whole)) if m % 2 == 0 else ((None, whole), (0, by_piece))
            for whole_periods, times in order:
                t = time.perf_counter()
                refresh_rollups(client, windows, whole_periods=whole_periods)
                times.append(time.perf_counter() - t)
            print(f"  minute {m}: by piece {by_piece[-1]:.2f} s, whole period {whole[-1]:.2f} s")
        counted = client.query("SELECT sum(windows) FROM aggregates_1h FINAL").result_rows[0][0]
        client.close()
    finally:
        stop_store(settings)
    discard_private(settings)  # kept when the run failed
    if counted != len(series) * minutes:
        msg = (
            f"bench rollups: the hour rollup counts {counted} windows, {len(series) * minutes} sent"
        )
        raise EnviroStreamError(msg)
    out = {
        "bench": "rollups",
        "devices": devices,
        "series": len(series),
        "pieces": pieces,
        "minutes": minutes,
        "by_piece_s": [round(t, 3) for t in by_piece],
        "whole_period_s": [round(t, 3) for t in whole],
        "speedup_median": round(
            sorted(by_piece)[len(by_piece) // 2] / sorted(whole)[len(whole) // 2], 1
        ),
    }
    print(json.dumps(out))
    return out
