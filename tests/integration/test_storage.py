"""Storage on a real store: codecs reach a store created by an older version, and the hourly
and daily rollups equal the minute windows they summarise, after corrections and replays.

Expected rollups are computed in Python from the windows the test wrote, never read back
from the code under test.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from core.settings import Settings, load_settings
from infra.processes import free_port
from infra.store import start_store, stop_store
from sinks.base import SinkBatch
from sinks.bind_chunks import bounded_chunks
from sinks.clickhouse import ClickHouseSink
from sinks.client import get_client
from sinks.ddl import TABLES, codec_changes
from sinks.rollups import backfill_rollups

pytestmark = pytest.mark.integration

T0 = 1_767_222_000_000  # 2025-12-31T23:00Z: the data spans a month and a year boundary
MINUTE = 60_000
HOUR = 3_600_000
DAY = 86_400_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    tmp: Path = tmp_path_factory.mktemp("storage")
    settings = load_settings({}, data_dir=tmp / "data", store_port=free_port(), log_level="WARNING")
    try:
        start_store(settings)
    except Exception as exc:
        stop_store(settings)
        pytest.fail(f"could not start the store: {exc}")
    yield settings
    stop_store(settings)


def _codecs(client: Any, table: str) -> dict[str, tuple[str, str]]:
    rows = client.query(
        "SELECT name, type, compression_codec FROM system.columns "
        "WHERE database = currentDatabase() AND table = {t:String}",
        parameters={"t": table},
    ).result_rows
    return {name: (ctype, codec) for name, ctype, codec in rows}


READING_COLUMNS = TABLES["readings"].column_names


def _readings(n: int, start: int) -> SinkBatch:
    rows = [
        [T0 + (start + i) * 1000, "default", "dev-1", "MACHINE", "dev-1/vibration",
         "VIBRATION", 0.5 + i / 8, "mm/s", "GOOD", start + i, f"dev-1/vibration@{start + i}",
         "", "", {}]
        for i in range(n)
    ]  # fmt: skip
    return SinkBatch("readings", tuple(READING_COLUMNS), [list(c) for c in zip(*rows, strict=True)])


def test_an_existing_store_gets_the_codecs_and_keeps_accepting_writes(store: Settings) -> None:
    client = get_client(store, database="upgrade")
    # The store as an older version left it: the same tables without codecs, with data.
    for table in TABLES.values():
        client.command(replace(table, codecs={}).create_sql(30))
    sink = ClickHouseSink(client, store)
    sink.write(_readings(10, 0))
    before = _codecs(client, "readings")
    assert before["value"] == ("Float64", "")

    sink.setup()  # what the new version does at start

    for name, table in TABLES.items():
        now = _codecs(client, name)
        old_types = {c: t for c, t in table.columns}
        for column, codec in table.codecs.items():
            assert now[column][1] == f"CODEC({codec})", (name, column)
        for column, ctype in old_types.items():  # types never change
            assert now[column][0] == ctype, (name, column)
    # Idempotent: a second start finds nothing to change (the sink compares exactly).
    sink.setup()
    for name, table in TABLES.items():
        reported = {c: codec for c, (_, codec) in _codecs(client, name).items()}
        assert codec_changes(table, reported) == [], name
    sink.write(_readings(10, 10))
    client.command("OPTIMIZE TABLE readings FINAL")  # old and new parts merge under new codecs
    count, total, ids = client.query(
        "SELECT count(), sum(value), uniqExact(reading_id) FROM readings FINAL"
    ).result_rows[0]
    assert (count, ids) == (20, 20)
    assert total == pytest.approx(sum(0.5 + i / 8 for i in range(10)) * 2)
    client.close()


# -- rollups -----------------------------------------------------------------------------
AGG_COLUMNS = TABLES["aggregates"].column_names
SERIES = [("default", "dev-1", "TEMPERATURE"), ("default", "dev-2", "TEMPERATURE"),
          ("acme", "dev-1", "VOLTAGE")]  # fmt: skip


def _window(series: tuple[str, str, str], start: int, values: list[float]) -> dict[str, Any]:
    n = len(values)
    mean = sum(values) / n
    return {
        "window_start": start, "window_end": start + MINUTE, "window_size": "1m",
        "tenant_id": series[0], "device_id": series[1], "device_type": "MACHINE",
        "capability": series[2], "unit": "u", "count": n, "mean": mean,
        "min": min(values), "max": max(values),
        "std": math.sqrt(sum((v - mean) ** 2 for v in values) / n),
        "first": values[0], "last": values[-1],
        "first_ts": start + 1000, "last_ts": start + 1000 * n,
        "_values": values,
    }  # fmt: skip


def _batch(windows: list[dict[str, Any]]) -> SinkBatch:
    return SinkBatch(
        "aggregates", tuple(AGG_COLUMNS), [[w[c] for w in windows] for c in AGG_COLUMNS]
    )


def _expected(windows: dict[tuple, dict[str, Any]], period: int) -> dict[tuple, dict]:
    """Per (tenant, device, capability, period start): the statistics of every reading."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for (t, d, c, start), w in windows.items():
        groups.setdefault((t, d, c, start - start % period), []).append(w)
    out = {}
    for key, ws in groups.items():
        values = [v for w in ws for v in w["_values"]]
        mean = sum(values) / len(values)
        ws.sort(key=lambda w: w["window_start"])
        out[key] = {
            "windows": len(ws), "count": len(values), "sum": sum(values),
            "sum_sq": sum(v * v for v in values), "mean": mean,
            "std": math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)),
            "min": min(values), "max": max(values),
            "first": ws[0]["_values"][0], "last": ws[-1]["_values"][-1],
        }  # fmt: skip
    return out


def _rollup(client: Any, table: str) -> dict[tuple, dict]:
    names = ["windows", "count", "sum", "sum_sq", "mean", "std", "min", "max", "first", "last"]
    rows = client.query(
        f"SELECT tenant_id, device_id, capability, toUnixTimestamp64Milli(window_start), "
        f"source_window_size, {', '.join(names)} FROM {table} FINAL"
    ).result_rows
    out = {}
    for row in rows:
        assert row[4] == "1m"
        out[tuple(row[:4])] = dict(zip(names, row[5:], strict=True))
    return out


def _assert_rollups_match(client: Any, windows: dict[tuple, dict[str, Any]]) -> None:
    for table, period in (("aggregates_1h", HOUR), ("aggregates_1d", DAY)):
        got, want = _rollup(client, table), _expected(windows, period)
        assert got.keys() == want.keys(), table
        for key, stats in want.items():
            for name, value in stats.items():
                assert got[key][name] == pytest.approx(value, rel=1e-9, abs=1e-9), (
                    table, key, name,
                )  # fmt: skip


def test_rollups_equal_the_minute_windows_after_corrections_and_replays(
    store: Settings,
) -> None:
    client = get_client(store, database="rollups")
    sink = ClickHouseSink(client, store)
    sink.setup()
    rng = random.Random(13)
    windows: dict[tuple, dict[str, Any]] = {}
    batches = []
    # 3 series x 150 minutes from 23:00 on Dec 31: three hours, two days, two months.
    for m in range(0, 150, 30):
        batch = []
        for s in SERIES:
            for k in range(m, m + 30):
                if rng.random() < 0.1:
                    continue  # a silent minute: no window
                start = T0 + k * MINUTE
                w = _window(s, start, [rng.gauss(20, 3) for _ in range(rng.randint(1, 60))])
                windows[(*s, start)] = w
                batch.append(w)
        batches.append(batch)
        sink.write(_batch(batch))
    _assert_rollups_match(client, windows)

    # Late readings: windows recomputed with more readings are written again (the worker's
    # correction), in the past hour and day; and a replay writes an old batch once more.
    corrected = []
    for key in rng.sample(sorted(windows), 12):
        old = windows[key]
        extra = [rng.gauss(40, 5) for _ in range(rng.randint(1, 5))]
        windows[key] = _window(key[:3], key[3], old["_values"] + extra)
        corrected.append(windows[key])
    sink.write(_batch(corrected))
    sink.write(_batch(batches[1]))  # replayed after a crash: older, smaller rows again
    _assert_rollups_match(client, windows)
    client.close()


def test_a_fleets_minute_is_rolled_up_whatever_its_number_of_series(store: Settings) -> None:
    """300 devices x 12 capabilities (3,600 series, ~200 kB of bound series: more than one
    request can carry), written as the worker does: one ``aggregates`` write per minute
    (three minutes, the last in the next hour), then late readings correcting a window
    of every series in each of three earlier hours (one write: the run of hours is too
    long to recompute every series, so it goes statement by piece of series). The rollups
    hold every series, equal to the windows; the windows recomputed from stored readings
    come back for 3,600 refs at once."""
    client = get_client(store, database="fleet_minute")
    sink = ClickHouseSink(client, store)
    sink.setup()
    rng = random.Random(5)
    series = [
        ("default", f"site-north-substation-{d:04d}", cap)
        for d in range(300)
        for cap in ("VOLTAGE", "CURRENT", "TEMPERATURE", "FREQUENCY", "POWER_FACTOR",
                    "ACTIVE_POWER", "REACTIVE_POWER", "OIL_TEMPERATURE", "HUMIDITY",
                    "VIBRATION", "PRESSURE", "FLOW")
    ]  # fmt: skip
    windows: dict[tuple, dict[str, Any]] = {}
    for minute in (238, 239, 240):  # 2026-01-01 02:58, 02:59 and 03:00
        start = T0 + minute * MINUTE
        batch = [_window(s, start, [rng.gauss(50, 2) for _ in range(3)]) for s in series]
        windows.update({(*s, start): w for s, w in zip(series, batch, strict=True)})
        sink.write(_batch(batch))
    _assert_rollups_match(client, windows)

    late = []
    for hour in (0, 1, 2):
        start = T0 + hour * HOUR + 30 * MINUTE
        for s in series:
            windows[(*s, start)] = _window(s, start, [rng.gauss(50, 2) for _ in range(4)])
            late.append(windows[(*s, start)])
    sink.write(_batch(late))
    _assert_rollups_match(client, windows)

    rows = [
        [w["first_ts"] + 1000 * i, t, d, "GRID", f"{d}/{c}", c, v, "u", "GOOD", i,
         f"{d}/{c}@{k}/{i}", "", "", {}]
        for k, ((t, d, c, _), w) in enumerate(windows.items())
        for i, v in enumerate(w["_values"])
    ]  # fmt: skip
    columns = [list(c) for c in zip(*rows, strict=True)]
    sink.write(SinkBatch("readings", tuple(READING_COLUMNS), columns))
    refs = sorted(windows)[:3_600]
    got = {
        (r["tenant_id"], r["device_id"], r["capability"], r["window_start"]): r["count"]
        for r in sink.recompute_windows(MINUTE, refs)
    }
    assert got == {ref: windows[ref]["count"] for ref in refs}
    # A worker's first minute after a start: a window of nearly every series (more than
    # one piece of refs), recomputed in one read of the minute; the others are left out.
    minute = [ref for ref in windows if ref[3] == T0 + 239 * MINUTE][10:]
    got = {
        (r["tenant_id"], r["device_id"], r["capability"], r["window_start"]): r["count"]
        for r in sink.recompute_windows(MINUTE, minute)
    }
    assert len(list(bounded_chunks(minute))) > 1
    assert got == {ref: windows[ref]["count"] for ref in minute}
    client.close()


def test_backfill_fills_the_rollups_of_a_store_older_than_them(store: Settings) -> None:
    client = get_client(store, database="backfill")
    ClickHouseSink(client, store).setup()
    rng = random.Random(5)
    windows = {}
    for s in SERIES:  # 40 days from Dec 31: two months after the first, written directly
        for k in range(0, 40 * 24 * 60, 97):
            start = T0 + k * MINUTE
            windows[(*s, start)] = _window(s, start, [rng.gauss(5, 1) for _ in range(3)])
    # Written as an older version (or a sink with ENVIROSTREAM_ROLLUPS_REFRESH=false) does.
    quiet = ClickHouseSink(client, store.model_copy(update={"rollups_refresh": False}))
    quiet.write(_batch(list(windows.values())))
    assert client.query("SELECT count() FROM aggregates").result_rows[0][0] == len(windows)
    assert _rollup(client, "aggregates_1h") == {}
    assert backfill_rollups(client, months_per_insert=1) == 3  # Dec, Jan, Feb
    _assert_rollups_match(client, windows)
    client.close()
