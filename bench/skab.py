"""``envirostream bench skab``: SKAB's valve1 experiments through our detection, scored as SKAB.

SKAB (Skoltech Anomaly Benchmark) records a water-pump test rig: eight signals at 1 Hz
(vibration x2, motor current, pressure, motor and fluid temperature, voltage, flow) in
``;``-separated files. Each ``valve1/*.csv`` holds one labelled fault (``anomaly``,
``changepoint``); ``anomaly-free/anomaly-free.csv`` is normal operation.

**Protocol** (``history``, the default): the rig is one machine (device ``skab-rig``, type
``MACHINE``, every column one capability, :data:`COLUMNS`). Its history is replayed first:
``anomaly-free.csv`` (a month earlier), then the 16 ``valve1`` files in time order (they are
one afternoon's consecutive recordings). The detection learns online as it goes, as a
deployed worker would; no parameter sees the labels. Every valve1 row is scored. The
alternative ``fresh`` protocol gives each file its own new device (about 400 normal rows to
learn from before the fault).

* **offline** (``--offline``): the readings are fed straight into the detection stage the
  worker builds (``streams.detection.detection_stage_from_settings``).
* **pipeline** (default): private Kafka + store + one worker (as ``bench nab``); the files
  are replayed with the wide-CSV replay (:func:`producers.wide_csv.replay_wide`), and the
  alerts are read back from ClickHouse.

An alert is active from its first to its last evidence (``first_seen`` .. ``last_seen``);
see :mod:`bench.skab_scoring` for the metrics.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.skab_scoring import (
    BinaryCounts,
    NabFileScore,
    active_mask,
    binary_counts,
    nab_file_score,
    nab_scores,
    predicted_changepoints,
)
from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = [
    "COLUMNS",
    "PUBLISHED",
    "SkabFile",
    "load_file",
    "offline_intervals",
    "resolve_skab_dir",
    "run_skab_bench",
    "score_files",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SKAB_DIR = Path("..") / "shared" / "datasets" / "skab"  # relative to REPO_ROOT
DEVICE = "skab-rig"
PROTOCOLS = ("history", "fresh", "free-history")
TICK_EVERY = 200  # offline: rows between two DetectionStage.tick calls
QUIET_SECONDS = 60.0
"""The alert quiet period of the bench: a 1 Hz machine without evidence for a minute has
recovered (the default hour is for fleets reporting once a minute; with it, one alert would
span several 20-minute files), and an alert that fires again is a new alert (no reopening:
SKAB scores each alert from its first to its last evidence). The bench also turns the
joint-state signal on (``ENVIROSTREAM_DETECTOR_JOINT``, off by default), the machine-level
signal it measures."""

COLUMNS: dict[str, str] = {
    "Accelerometer1RMS": "VIBRATION",
    "Accelerometer2RMS": "VIBRATION_PEAK",
    "Current": "MOTOR_CURRENT",
    "Pressure": "PRESSURE",
    "Temperature": "TEMPERATURE",
    "Thermocouple": "COOLANT_TEMPERATURE",
    "Voltage": "VOLTAGE",
    "Volume Flow RateRMS": "FLOW",
}
"""SKAB's columns as capabilities of one MACHINE (the fluid thermocouple as coolant)."""

PUBLISHED: tuple[tuple[str, float, float, float], ...] = (
    ("Conv-AE", 0.78, 13.6, 28.0),
    ("MSET", 0.78, 39.7, 14.1),
    ("T-squared+Q (PCA)", 0.76, 26.6, 24.9),
    ("LSTM-AE", 0.74, 30.0, 25.9),
    ("T-squared", 0.66, 19.2, 42.6),
    ("Isolation Forest", 0.29, 2.6, 82.9),
    ("Null detector", 0.0, 0.0, 100.0),
)
"""SKAB's leaderboard (F1, FAR %, MAR %; offline-trained, on the whole benchmark's test
parts, so beside ours for scale, not like for like)."""


@dataclass
class SkabFile:
    """One SKAB file: times (epoch ms), signal rows, labels (0/1; none in anomaly-free)."""

    name: str
    path: Path
    timestamps: list[int]
    values: list[list[float]]  # per row, in COLUMNS order
    anomaly: list[int]
    changepoint: list[int]


def resolve_skab_dir(option: str | Path | None, settings: Settings) -> Path:
    """``--skab-dir``, else ``ENVIROSTREAM_SKAB_DIR``, else ``../shared/datasets/skab``."""
    if option is not None:
        path, how = Path(option), "--skab-dir"
    elif settings.skab_dir is not None:
        path, how = Path(settings.skab_dir), "ENVIROSTREAM_SKAB_DIR"
    else:
        path, how = REPO_ROOT / DEFAULT_SKAB_DIR, "the default"
    path = path.expanduser().resolve()
    if not (path / "valve1").is_dir() or not any((path / "valve1").glob("*.csv")):
        msg = (
            f"SKAB dataset not found at {str(path)!r} ({how}): expected valve1/*.csv (and "
            "anomaly-free/anomaly-free.csv) there; point --skab-dir DIR (or "
            "ENVIROSTREAM_SKAB_DIR) at a copy of SKAB's data"
        )
        raise EnviroStreamError(msg)
    return path


def load_file(path: Path) -> SkabFile:
    """Read one SKAB file (``;``-separated, ``datetime`` first, labels if present)."""
    from producers.replay import parse_timestamp

    ts: list[int] = []
    values: list[list[float]] = []
    anomaly: list[int] = []
    changepoint: list[int] = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            ts.append(parse_timestamp(row["datetime"]))
            values.append([float(row[c]) for c in COLUMNS])
            anomaly.append(int(float(row.get("anomaly") or 0)))
            changepoint.append(int(float(row.get("changepoint") or 0)))
    return SkabFile(f"{path.parent.name}/{path.name}", path, ts, values, anomaly, changepoint)


def load_corpus(root: Path) -> tuple[SkabFile | None, list[SkabFile]]:
    """The anomaly-free file (if present) and the valve1 files in time order."""
    free_path = root / "anomaly-free" / "anomaly-free.csv"
    free = load_file(free_path) if free_path.is_file() else None
    files = [load_file(p) for p in sorted((root / "valve1").glob("*.csv"))]
    files.sort(key=lambda f: f.timestamps[0] if f.timestamps else 0)
    return free, files


# -- detections ---------------------------------------------------------------------------
def reading_dicts(
    device: str, seq: int, ts_ms: int, values: Sequence[float]
) -> Iterable[dict[str, Any]]:
    """One row of a SKAB file as decoded readings (as the wide-CSV replay writes them)."""
    for cap, value in zip(COLUMNS.values(), values, strict=True):
        sensor = f"{device}/{cap.lower()}"
        yield {
            "reading_id": f"{sensor}@{ts_ms}",
            "device_id": device,
            "device_type": "MACHINE",
            "sensor_id": sensor,
            "capability": cap,
            "value": value,
            "unit": "",
            "timestamp": ts_ms,
            "sequence": seq,
            "quality": "GOOD",
            "tenant_id": "default",
            "attributes": {},
            "label": None,
        }


def collect_intervals(
    alerts: Iterable[Mapping[str, Any]], spans: dict[str, list[int]], rules: dict[str, str]
) -> None:
    """Widen ``spans[alert_id]`` to ``[min first_seen, max last_seen]`` of its records."""
    for rec in alerts:
        aid = str(rec["alert_id"])
        first, last = int(rec["first_seen"]), int(rec["last_seen"])
        span = spans.setdefault(aid, [first, last])
        span[0], span[1] = min(span[0], first), max(span[1], last)
        rules[aid] = str(rec.get("rule", ""))


def offline_intervals(
    sequences: Sequence[Sequence[SkabFile]], settings: Settings, **overrides: Any
) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """Feed each sequence of files to its own fresh device of one stage; alert intervals
    (first .. last evidence) and the alerts by rule. ``overrides`` set DetectionConfig
    fields (a tuning run's choices)."""
    from streams.detection import detection_stage_from_settings

    stage = detection_stage_from_settings(settings, **overrides)
    src = ("skab", 0)
    spans: dict[str, list[int]] = {}
    rules: dict[str, str] = {}
    for k, files in enumerate(sequences):
        device = f"{DEVICE}-{k}"
        seq = 0
        for f in files:
            for ts, row in zip(f.timestamps, f.values, strict=True):
                for reading in reading_dicts(device, seq, ts, row):
                    stage.observe(src, reading)
                seq += 1
                if seq % TICK_EVERY == 0:
                    stage.tick([src])
                    collect_intervals(stage.take().alerts, spans, rules)
        stage.tick([src])
        collect_intervals(stage.take().alerts, spans, rules)
    by_rule: dict[str, int] = {}
    for rule in rules.values():
        by_rule[rule] = by_rule.get(rule, 0) + 1
    return [(a, b) for a, b in spans.values()], by_rule


def protocol_sequences(
    protocol: str, free: SkabFile | None, files: Sequence[SkabFile]
) -> list[list[SkabFile]]:
    """The files each device sees, in order: ``history`` one device (anomaly-free, then every
    file), ``fresh`` one device per file."""
    if protocol == "history":
        return [list(files)]
    if protocol == "free-history":
        return [([free] if free is not None else []) + list(files)]
    if protocol == "fresh":
        return [[f] for f in files]
    msg = f"--skab-protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}"
    raise EnviroStreamError(msg)


# -- scoring ------------------------------------------------------------------------------
@dataclass
class Scores:
    counts: BinaryCounts
    nab: dict[str, float]
    per_file: dict[str, dict[str, Any]]
    by_file: dict[str, BinaryCounts]


def score_files(files: Sequence[SkabFile], intervals: Sequence[tuple[int, int]]) -> Scores:
    """SKAB's metrics of ``intervals`` (alert first .. last evidence) over ``files``."""
    counts = BinaryCounts()
    nab_parts: list[NabFileScore] = []
    per_file: dict[str, dict[str, Any]] = {}
    by_file: dict[str, BinaryCounts] = {}
    for f in files:
        lo, hi = f.timestamps[0], f.timestamps[-1]
        mine = [(a, b) for a, b in intervals if b >= lo and a <= hi]
        predicted = active_mask(f.timestamps, mine)
        c = binary_counts(f.anomaly, predicted)
        counts += c
        by_file[f.name] = c
        nab = nab_file_score(f.timestamps, f.changepoint, predicted_changepoints(predicted))
        nab_parts.append(nab)
        per_file[f.name] = {
            "rows": len(f.timestamps),
            "f1": round(c.f1, 3),
            "far": round(c.far, 1),
            "mar": round(c.mar, 1),
            "cp_detected": nab.detected,
            "cp_windows": nab.windows,
        }
    return Scores(counts, nab_scores(nab_parts), per_file, by_file)


# -- pipeline -----------------------------------------------------------------------------
def pipeline_intervals(
    sequences: Sequence[Sequence[SkabFile]], base: Settings, *, idle_seconds: float = 5.0
) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """Replay the files through private Kafka + worker + store; alert intervals from the
    store's ``alerts`` table, and the alerts by rule."""
    from infra.harness import (
        WorkerProcess,
        discard_private,
        private_settings,
        start_services,
        stop_services,
    )
    from producers.wide_csv import WideCsvSource, replay_wide
    from schemas import AvroCodec
    from sinks.clickhouse import ClickHouseSink
    from sinks.client import get_client
    from streams.signals.config import DETECTION_SETTINGS
    from topics import READINGS, TopicAdmin, topic_specs
    from topics.producer import RecordProducer

    detection = {name: getattr(base, name) for name in DETECTION_SETTINGS}
    settings = private_settings(base, "envirostream-skab-", idle_close_seconds=2, **detection)
    log = settings.data_dir / "worker.log"
    print(f"  private services under {settings.data_dir}", flush=True)
    start_services(settings)
    worker: WorkerProcess | None = None
    try:
        TopicAdmin(settings).create_missing(topic_specs(settings))
        client = get_client(settings)
        ClickHouseSink(client, settings).setup()
        worker = WorkerProcess(settings, log)
        codec = AvroCodec()
        producer = RecordProducer(settings)
        expected: dict[str, int] = {}
        for k, files in enumerate(sequences):
            device, seq = f"{DEVICE}-{k}", 0
            times: set[int] = set()
            for f in files:
                src = WideCsvSource(f.path, "datetime", COLUMNS, separator=";")
                before = producer.delivered
                report = replay_wide(
                    src, device, producer, codec, READINGS, device_type="MACHINE",
                    first_sequence=seq,
                )  # fmt: skip
                seq += len(f.timestamps)
                times.update(f.timestamps)
                want = len(f.timestamps) * len(COLUMNS)
                if report.undelivered or report.skipped or report.delivered - before != want:
                    msg = f"replay of {f.name}: {report.delivered - before}/{want} delivered"
                    raise EnviroStreamError(msg)
            expected[device] = len(times) * len(COLUMNS)
        del producer

        def stored() -> bool:
            rows = client.query(
                "SELECT device_id, count() FROM readings FINAL GROUP BY device_id"
            ).result_rows
            got = {str(d): int(n) for d, n in rows}
            return all(got.get(d, 0) >= n for d, n in expected.items())

        worker.wait_for("all readings in ClickHouse", stored, 1800)
        last, since = -1, time.monotonic()
        while time.monotonic() - since < idle_seconds:
            n = int(client.query("SELECT count() FROM alerts").result_rows[0][0])
            if n != last:
                last, since = n, time.monotonic()
            if not worker.alive():
                msg = f"worker exited ({worker.returncode}); see {log}"
                raise EnviroStreamError(msg)
            time.sleep(0.5)
        rows = client.query(
            "SELECT alert_id, any(rule), toUnixTimestamp64Milli(min(first_seen)), "
            "toUnixTimestamp64Milli(max(last_seen)) FROM alerts GROUP BY alert_id"
        ).result_rows
    finally:
        if worker is not None:
            worker.stop()
        stop_services(settings)
    discard_private(settings)  # kept when the run failed: its logs
    by_rule: dict[str, int] = {}
    for _aid, rule, _a, _b in rows:
        by_rule[str(rule)] = by_rule.get(str(rule), 0) + 1
    return [(int(a), int(b)) for _aid, _rule, a, b in rows], by_rule


# -- cross-validation ---------------------------------------------------------------------
def run_lofo(settings: Settings, root: Path, protocol: str) -> dict[str, Any]:
    """Every candidate of the grid offline; in-sample best and leave-one-file-out figures."""
    from bench.skab_tuning import GRID, best_candidate, leave_one_file_out

    free, files = load_corpus(root)
    sequences = protocol_sequences(protocol, free, files)
    names = [f.name for f in files]
    print(f"bench skab --lofo (offline, protocol {protocol}): {len(GRID)} candidates", flush=True)
    t0 = time.perf_counter()
    results: list[Scores] = []
    for cand in GRID:
        intervals, _ = offline_intervals(sequences, settings, **cand)
        sc = score_files(files, intervals)
        results.append(sc)
        c = sc.counts
        print(f"  {cand}: F1 {c.f1:.3f} FAR {c.far:.1f} MAR {c.mar:.1f}", flush=True)
    per_file = [r.by_file for r in results]
    k = best_candidate(per_file, names)
    inside = results[k].counts
    held, chosen = leave_one_file_out(per_file, names)
    rows = [
        (f"ours: in-sample best {GRID[k]}", inside),
        ("ours: leave-one-file-out", held),
    ]
    for label, c in rows:
        print(f"{label:<60} F1 {c.f1:.2f}  FAR {c.far:5.1f}  MAR {c.mar:5.1f}")
    for name, f1, far, mar in PUBLISHED:
        print(f"{'SKAB published: ' + name:<60} F1 {f1:.2f}  FAR {far:5.1f}  MAR {mar:5.1f}")
    out = {
        "bench": "skab",
        "mode": "offline-lofo",
        "protocol": protocol,
        "grid": list(GRID),
        "in_sample": {"candidate": GRID[k], **_figures(inside), "nab": results[k].nab},
        "lofo": {**_figures(held), "chosen": {n: GRID[i] for n, i in chosen.items()}},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out))
    return out


def _figures(c: BinaryCounts) -> dict[str, Any]:
    return {
        "f1": round(c.f1, 4),
        "far": round(c.far, 2),
        "mar": round(c.mar, 2),
        "tp": c.tp,
        "fp": c.fp,
        "fn": c.fn,
        "tn": c.tn,
    }


# -- report -------------------------------------------------------------------------------
def report_lines(scores: Scores, label: str) -> list[str]:
    c = scores.counts
    head = f"{'detector':<34} {'F1':>5} {'FAR %':>6} {'MAR %':>6}"
    lines = [head, "-" * len(head)]
    lines.append(f"{'ours: ' + label:<34} {c.f1:>5.2f} {c.far:>6.1f} {c.mar:>6.1f}")
    for name, f1, far, mar in PUBLISHED:
        lines.append(f"{'SKAB published: ' + name:<34} {f1:>5.2f} {far:>6.1f} {mar:>6.1f}")
    nab = scores.nab
    lines.append(
        f"NAB changepoint scores (60 s windows): standard {nab['standard']:.2f}, "
        f"low FP {nab['low_fp']:.2f}, low FN {nab['low_fn']:.2f}"
    )
    lines.append(
        "(published: offline-trained, on SKAB's test parts of every folder; ours: online, "
        "every valve1 row)"
    )
    return lines


def run_skab_bench(
    settings: Settings,
    *,
    offline: bool = False,
    skab_dir: str | Path | None = None,
    protocol: str = "history",
    lofo: bool = False,
) -> dict[str, Any]:
    """Run SKAB valve1 through the detection (pipeline or offline) and score it as SKAB;
    with ``lofo``, choose the joint-state parameters by cross-validation (offline)."""
    root = resolve_skab_dir(skab_dir, settings)
    settings = settings.model_copy(
        update={
            "alert_quiet_period_seconds": QUIET_SECONDS,
            "alert_reopen_seconds": 0.0,
            "detector_joint": True,
        }
    )
    if lofo:
        return run_lofo(settings, root, protocol)
    free, files = load_corpus(root)
    sequences = protocol_sequences(protocol, free, files)
    mode = "offline" if offline else "pipeline"
    rows = sum(len(f.timestamps) for f in files)
    print(
        f"bench skab ({mode}, protocol {protocol}): {len(files)} files, {rows:,} rows from {root}",
        flush=True,
    )
    t0 = time.perf_counter()
    if offline:
        intervals, by_rule = offline_intervals(sequences, settings)
    else:
        intervals, by_rule = pipeline_intervals(sequences, settings)
    seconds = time.perf_counter() - t0
    scores = score_files(files, intervals)
    for line in report_lines(scores, f"{mode}, {protocol}"):
        print(line)
    c = scores.counts
    out = {
        "bench": "skab",
        "mode": mode,
        "protocol": protocol,
        "files": len(files),
        "rows": rows,
        **_figures(c),
        "nab": {k: round(v, 2) for k, v in scores.nab.items()},
        "alerts": len(intervals),
        "alerts_by_rule": by_rule,
        "seconds": round(seconds, 1),
        "per_file": scores.per_file,
    }
    print(json.dumps(out))
    return out
