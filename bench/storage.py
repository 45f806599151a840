"""``envirostream bench storage``: bytes per stored reading, codecs side by side, rollup queries.

1. A seeded simulated fleet (``--devices`` x ``--hours`` at 1 Hz, all four kinds, 20%
   failing) is generated and Avro-encoded exactly as ``simulate`` sends it (single-object
   encoding, the bytes on the wire). Its readings are inserted into a private embedded store
   (own data dir and port) as the worker writes them, and its minute windows are built from
   them with one ``INSERT … SELECT`` (the statistics the worker computes).
2. The same rows are copied into one table per *codec candidate set* (for every column the
   k-th candidate of its list; columns are compressed independently, so one run compares every
   candidate of every column) and into the pre-codec DDL ("before") and the DDL of
   ``sinks/ddl.py`` ("after"). After ``OPTIMIZE … FINAL`` the sizes come from
   ``system.columns`` (per column) and ``system.parts`` (bytes on disk: columns + index +
   marks). The ratio is Avro bytes / bytes on disk.
3. Rollups (``bench/storage_rollups.py``): a month of minute windows of ``--rollup-devices``
   devices generated with numpy, the rollups filled the way the sink fills them, and the
   month-long hourly/daily queries timed on the rollups and on the minute table.

The last line is JSON.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import numpy as np

from core.settings import Settings
from infra.harness import discard_private, private_settings
from infra.store import start_store, stop_store
from producers.encoding import TickEncoder
from producers.models import KINDS
from producers.simulator import SimulationConfig
from schemas import AvroCodec
from sinks.client import get_client
from sinks.ddl import TABLES, TableDef

__all__ = ["CANDIDATES", "fleet_readings", "run_storage_bench"]

START_MS = 1_767_225_600_000  # 2026-01-01T00:00Z
CHUNK = 500_000
# Per-column sizes exist only for wide parts; small parts would be written compact.
WIDE = " SETTINGS min_bytes_for_wide_part = 0, min_rows_for_wide_part = 0"

_TIME = ["", "DoubleDelta", "DoubleDelta, ZSTD(1)", "Delta(8), ZSTD(1)", "Delta(8), ZSTD(3)"]
_FLOAT = ["", "Gorilla(8)", "Gorilla(8), ZSTD(1)", "ZSTD(1)", "ZSTD(3)", "FPC(12, 8)"]
_INT = ["", "Delta(8), ZSTD(1)", "DoubleDelta", "DoubleDelta, ZSTD(1)", "T64, ZSTD(1)"]
_STR = ["", "ZSTD(1)", "ZSTD(3)", "ZSTD(6)", "LowCardinality"]
_LC = ["", "ZSTD(1)", "ZSTD(3)"]
_TYPES = {
    "DateTime64(3, 'UTC')": _TIME,
    "Float64": _FLOAT,
    "Int64": _INT,
    "UInt64": _INT,
    "String": _STR,
    "LowCardinality(String)": _LC,
    "Map(LowCardinality(String), String)": _LC,
}


def _candidates(table: TableDef) -> dict[str, list[str]]:
    """Per column, the codecs tried: "" is the server default (LZ4); "LowCardinality" means
    the type ``LowCardinality(String)`` with the default codec."""
    out = {name: _TYPES[ctype] for name, ctype in table.columns}
    out["stored_at"] = _TIME
    return out


CANDIDATES = {name: _candidates(TABLES[name]) for name in ("readings", "aggregates")}


def _variant(table: TableDef, name: str, choice: dict[str, str]) -> TableDef:
    """``table`` named ``name`` with the codecs (or LowCardinality) of ``choice``."""
    columns = tuple(
        (c, "LowCardinality(String)" if choice.get(c) == "LowCardinality" else t)
        for c, t in table.columns
    )
    codecs = {c: v for c, v in choice.items() if v and v != "LowCardinality"}
    return replace(table, name=name, columns=columns, codecs=codecs)


def fleet_readings(devices: int, hours: float, seed: int) -> tuple[dict[str, Any], int]:
    """The ``readings`` columns of a simulated fleet (as the worker writes them, with a
    simulated ``stored_at``) and the Avro bytes of the same readings on the wire."""
    config = SimulationConfig(
        devices=devices, kinds=KINDS, speedup=0, start_ms=START_MS, seed=seed, failure_rate=0.2
    )
    fleet = config.fleet()
    encoder = TickEncoder(fleet, AvroCodec())
    st = fleet.static
    rows, ts, seq, values, labels = [], [], [], [], []
    avro = 0
    for i in range(round(hours * 3600)):
        tick = fleet.tick(START_MS + i * 1000)
        _, encoded = encoder.encode(tick, i)
        avro += sum(map(len, encoded))
        rows.append(tick.rows)
        ts.append(np.asarray(tick.timestamps, dtype=np.int64))
        seq.append(np.asarray(tick.sequences(i), dtype=np.int64))
        values.append(tick.value_array)
        labels.append(tick.label_codes)
    r = np.concatenate(rows)
    t = np.concatenate(ts)
    code = np.concatenate(labels)
    sensors = np.array(st.sensors, dtype=object)[r]
    label_list = [lb or {} for lb in st.labels]
    rng = np.random.default_rng(seed)
    # The worker stores a batch ~0.5-3 s after its readings' event time (issue #13: p50 1.4 s).
    stored = t + rng.integers(500, 3000, len(t))
    cols = {
        "ts": t,
        "tenant_id": ["default"] * len(r),
        "device_id": np.array(st.device_ids, dtype=object)[r].tolist(),
        "device_type": np.array(st.device_types, dtype=object)[r].tolist(),
        "sensor_id": sensors.tolist(),
        "capability": np.array(st.capabilities, dtype=object)[r].tolist(),
        "value": np.concatenate(values).astype(np.float64),
        "unit": np.array(st.units, dtype=object)[r].tolist(),
        "quality": ["GOOD"] * len(r),
        "sequence": np.concatenate(seq),
        "reading_id": [f"{s}@{x}" for s, x in zip(sensors.tolist(), t.tolist(), strict=True)],
        "scenario": np.array([lb.get("scenario", "") for lb in label_list], dtype=object)[
            code
        ].tolist(),
        "phase": np.array([lb.get("phase", "") for lb in label_list], dtype=object)[code].tolist(),
        "stored_at": stored,
    }
    return cols, avro


def _insert(client: Any, table: str, cols: dict[str, Any]) -> None:
    names = list(cols)
    n = len(cols["ts"])
    for lo in range(0, n, CHUNK):
        block = [_as_list(cols[c][lo : lo + CHUNK]) for c in names]
        client.insert(table, block, column_names=names, column_oriented=True)


def _as_list(values: Any) -> list:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


_WINDOWS_SQL = """
INSERT INTO {dst} (window_start, window_end, window_size, tenant_id, device_id, device_type,
                   capability, unit, count, mean, min, max, std, first, last, first_ts,
                   last_ts, stored_at)
SELECT fromUnixTimestamp64Milli(w, 'UTC'), fromUnixTimestamp64Milli(w + 60000, 'UTC'), '1m',
       tenant_id, device_id, any(device_type), capability, any(unit), count(), avg(value),
       min(value), max(value), stddevPopStable(value), argMin(value, (ts, sequence)),
       argMax(value, (ts, sequence)), min(ts), max(ts),
       fromUnixTimestamp64Milli(w + 60000 + 12000 + cityHash64(device_id, capability, w) % 3000,
                                'UTC')
FROM {src}
GROUP BY tenant_id, device_id, capability,
         intDiv(toUnixTimestamp64Milli(ts), 60000) * 60000 AS w
"""


def _sizes(client: Any, table: str) -> tuple[dict[str, tuple[int, int, str]], int, int]:
    """Per column (compressed, uncompressed, codec), bytes on disk and rows of ``table``."""
    client.command(f"OPTIMIZE TABLE {table} FINAL")
    cols = client.query(
        "SELECT name, data_compressed_bytes, data_uncompressed_bytes, compression_codec, type "
        "FROM system.columns WHERE database = currentDatabase() AND table = {t:String}",
        parameters={"t": table},
    ).result_rows
    disk, rows = client.query(
        "SELECT sum(bytes_on_disk), sum(rows) FROM system.parts "
        "WHERE database = currentDatabase() AND table = {t:String} AND active",
        parameters={"t": table},
    ).result_rows[0]
    out = {}
    for name, comp, unc, codec, ctype in cols:
        shown = codec or "default (LZ4)"
        if ctype.startswith("LowCardinality") and not codec:
            shown = "LowCardinality"
        out[name] = (int(comp), int(unc), shown)
    return out, int(disk), int(rows)


def _compare(client: Any, base: str, src: str) -> dict[str, Any]:
    """Every candidate set of ``base``'s columns, and before/after, filled from ``src``."""
    table = TABLES[base]
    cands = CANDIDATES[base]
    k_max = max(len(v) for v in cands.values())
    tables = {"before": replace(table, name=f"{base}_before", codecs={})}
    tables["after"] = replace(table, name=f"{base}_after")
    for k in range(1, k_max):
        choice = {c: v[k] if k < len(v) else "" for c, v in cands.items()}
        tables[f"k{k}"] = _variant(table, f"{base}_k{k}", choice)
    sizes = {}
    for label, t in tables.items():
        if t.name != src:
            client.command(t.create_sql(3650) + WIDE)
            names = ", ".join(f"`{c}`" for c in [*t.column_names, "stored_at"])
            client.command(f"INSERT INTO {t.name} ({names}) SELECT {names} FROM {src}")
        sizes[label] = _sizes(client, t.name)
    best: dict[str, tuple[int, str]] = {}
    per_column: dict[str, dict[str, int]] = {}
    for label, (cols, _, _) in sizes.items():
        for name, (comp, _, codec) in cols.items():
            per_column.setdefault(name, {})[codec] = comp
            if label != "after" and (name not in best or comp < best[name][0]):
                best[name] = (comp, codec)
    return {"sizes": sizes, "best": best, "per_column": per_column}


def _report(base: str, res: dict[str, Any], avro: int, readings: int) -> dict[str, Any]:
    before, disk_b, rows = res["sizes"]["before"]
    after, disk_a, _ = res["sizes"]["after"]
    print(f"\n{base}: {rows:,} rows")
    print(f"  {'column':<12} {'uncompressed':>12} {'before':>10}  {'after':>10}  after codec")
    for name, (comp, unc, codec) in after.items():
        print(f"  {name:<12} {unc:>12,} {before[name][0]:>10,}  {comp:>10,}  {codec}")
        b_comp, b_codec = res["best"][name]
        if b_comp < comp * 0.97:
            print(f"  {'':<12} (best measured: {b_codec}, {b_comp:,})")
    col_b = sum(v[0] for v in before.values())
    col_a = sum(v[0] for v in after.values())
    print(f"  columns {col_b:,} -> {col_a:,} bytes; on disk {disk_b:,} -> {disk_a:,} bytes")
    print(f"  per reading on disk: {disk_b / readings:.2f} -> {disk_a / readings:.2f} bytes")
    print("  every candidate (compressed bytes):")
    for name, by_codec in res["per_column"].items():
        ranked = sorted(by_codec.items(), key=lambda kv: kv[1])
        print(f"    {name:<12} " + "; ".join(f"{c} {b:,}" for c, b in ranked))
    return {
        "rows": rows,
        "bytes_on_disk_before": disk_b,
        "bytes_on_disk_after": disk_a,
        "column_bytes_before": col_b,
        "column_bytes_after": col_a,
        "bytes_per_reading_before": round(disk_b / readings, 3),
        "bytes_per_reading_after": round(disk_a / readings, 3),
        "ratio_vs_avro_before": round(avro / disk_b, 2),
        "ratio_vs_avro_after": round(avro / disk_a, 2),
        "after_codecs": {n: v[2] for n, v in after.items()},
        "best_codecs": {n: v[1] for n, v in res["best"].items()},
    }


def run_storage_bench(
    base: Settings,
    devices: int = 50,
    hours: float = 1.0,
    seed: int = 7,
    rollup_devices: int = 50,
    rollup_days: int = 30,
) -> dict[str, Any]:
    from bench.storage_rollups import run_rollup_bench

    settings = private_settings(base, "envirostream-storage-")
    t0 = time.perf_counter()
    cols, avro = fleet_readings(devices, hours, seed)
    n = len(cols["ts"])
    print(
        f"bench storage: {devices:,} devices x {hours:g} h at 1 Hz (seed {seed}): {n:,} readings,"
        f" Avro {avro:,} bytes = {avro / n:.1f} bytes/reading (single-object encoding)"
        f" [generated in {time.perf_counter() - t0:.0f} s]",
        flush=True,
    )
    start_store(settings)
    try:
        client = get_client(settings)
        readings_src = "readings_before"
        client.command(
            replace(TABLES["readings"], name=readings_src, codecs={}).create_sql(3650) + WIDE
        )
        _insert(client, readings_src, cols)
        del cols
        client.command(
            replace(TABLES["aggregates"], name="windows_src", codecs={}).create_sql(3650) + WIDE
        )
        client.command(_WINDOWS_SQL.format(dst="windows_src", src=readings_src))
        result: dict[str, Any] = {
            "devices": devices,
            "hours": hours,
            "seed": seed,
            "readings": n,
            "avro_bytes": avro,
            "avro_bytes_per_reading": round(avro / n, 2),
        }
        result["readings_table"] = _report(
            "readings", _compare(client, "readings", readings_src), avro, n
        )
        result["aggregates_table"] = _report(
            "aggregates", _compare(client, "aggregates", "windows_src"), avro, n
        )
        total_b = (
            result["readings_table"]["bytes_on_disk_before"]
            + result["aggregates_table"]["bytes_on_disk_before"]
        )
        total_a = (
            result["readings_table"]["bytes_on_disk_after"]
            + result["aggregates_table"]["bytes_on_disk_after"]
        )
        result["readings_and_windows_ratio_before"] = round(avro / total_b, 2)
        result["readings_and_windows_ratio_after"] = round(avro / total_a, 2)
        r = result["readings_table"]
        print(
            f"\nreadings: {r['bytes_per_reading_before']} -> {r['bytes_per_reading_after']} "
            f"bytes/reading on disk; Avro/stored {r['ratio_vs_avro_before']}:1 -> "
            f"{r['ratio_vs_avro_after']}:1 (with the minute windows: "
            f"{result['readings_and_windows_ratio_before']}:1 -> "
            f"{result['readings_and_windows_ratio_after']}:1)",
            flush=True,
        )
        result["rollups"] = run_rollup_bench(client, settings, rollup_devices, rollup_days, seed)
        client.close()
    finally:
        stop_store(settings)
    discard_private(settings)  # kept when the run failed
    print(json.dumps(result))
    return result
