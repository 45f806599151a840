"""``envirostream bench nab``: the Numenta Anomaly Benchmark (NAB) on our detection.

The ``realKnownCause`` files of NAB (``timestamp,value`` series with labelled anomaly
windows) are run through the detection and the alerts it raises are scored:

* **pipeline** (default): private Kafka + store + one worker subprocess (as
  ``bench throughput``); every file is replayed with :func:`producers.replay.replay` at
  maximum speed as the readings of one device (the file's stem, capability ``GENERIC``).
  The worker's event-time watermark is per partition, so file *k* is shifted in time to
  start one day after file *k-1* ends (its windows are shifted alike, detections shifted
  back before scoring). Detections are the alerts in ClickHouse: ``min(first_seen)`` per
  ``alert_id``.
* **offline** (``--offline``, fast, for tuning): each file is fed straight into a fresh
  :class:`streams.detection.DetectionStage` built like the worker's; detections are the
  ``first_seen`` of each distinct FIRING alert.

Scoring is NAB's own (:mod:`bench.nab_scoring`).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.nab_scoring import (
    FileScore,
    WindowMetrics,
    corpus_normalized,
    detection_rows,
    score_file,
    window_metrics,
    window_rows,
)
from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = [
    "REFERENCE_SCORES",
    "FileResult",
    "NabFile",
    "layout_offsets",
    "load_corpus",
    "offline_detections",
    "reading_dict",
    "resolve_nab_dir",
    "run_nab_bench",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NAB_DIR = Path("..") / "shared" / "datasets" / "nab"  # relative to REPO_ROOT
CATEGORY = "realKnownCause"
DAY_MS = 86_400_000
TICK_EVERY = 1000  # offline: rows between two DetectionStage.tick calls

# Published NAB scores (standard profile) on the full 58-file corpus, for scale.
REFERENCE_SCORES: tuple[tuple[str, float], ...] = (
    ("River HalfSpaceTrees (defaults), approx.", 15.0),
    ("Windowed Gaussian", 39.6),
    ("Random Cut Forest", 51.7),
    ("Numenta HTM", 70.5),
    ("best published", 74.9),
)


# -- data ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class NabFile:
    """One NAB data file: event times (UTC epoch ms), values, labelled windows (ms)."""

    name: str  # as in the label file, e.g. "realKnownCause/nyc_taxi.csv"
    path: Path
    timestamps: list[int]
    values: list[float]
    windows: list[tuple[int, int]]

    @property
    def device(self) -> str:
        return Path(self.name).stem


def resolve_nab_dir(option: str | Path | None, settings: Settings) -> Path:
    """``--nab-dir``, else ``ENVIROSTREAM_NAB_DIR``, else ``../shared/datasets/nab``."""
    if option is not None:
        path, how = Path(option), "--nab-dir"
    elif settings.nab_dir is not None:
        path, how = Path(settings.nab_dir), "ENVIROSTREAM_NAB_DIR"
    else:
        path, how = REPO_ROOT / DEFAULT_NAB_DIR, "the default"
    path = path.expanduser().resolve()
    needed = (path / CATEGORY, path / "labels" / "combined_windows.json")
    if not path.is_dir() or not all(p.exists() for p in needed):
        msg = (
            f"NAB dataset not found at {str(path)!r} ({how}): expected {CATEGORY}/*.csv and "
            "labels/combined_windows.json there; point --nab-dir DIR (or ENVIROSTREAM_NAB_DIR) "
            "at a copy of NAB's data and labels"
        )
        raise EnviroStreamError(msg)
    return path


def parse_nab_time(text: str) -> int:
    """``YYYY-MM-DD HH:MM:SS[.ffffff]`` (UTC) -> epoch ms."""
    when = dt.datetime.fromisoformat(text.strip()).replace(tzinfo=dt.UTC)
    return round(when.timestamp() * 1000)


def load_file(path: Path, name: str, windows: Iterable[Sequence[str]]) -> NabFile:
    timestamps: list[int] = []
    values: list[float] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        for row in reader:
            timestamps.append(parse_nab_time(row["timestamp"]))
            values.append(float(row["value"]))
    limits = sorted((parse_nab_time(a), parse_nab_time(b)) for a, b in windows)
    return NabFile(name, path, timestamps, values, limits)


def load_corpus(nab_dir: Path, category: str = CATEGORY) -> list[NabFile]:
    """Every ``category/*.csv`` with its windows from ``labels/combined_windows.json``."""
    labels = json.loads((nab_dir / "labels" / "combined_windows.json").read_text())
    files = []
    for path in sorted((nab_dir / category).glob("*.csv")):
        name = f"{category}/{path.name}"
        if name not in labels:
            msg = f"{name} has no entry in {nab_dir / 'labels' / 'combined_windows.json'}"
            raise EnviroStreamError(msg)
        files.append(load_file(path, name, labels[name]))
    if not files:
        msg = f"no {category}/*.csv under {str(nab_dir)!r} (--nab-dir)"
        raise EnviroStreamError(msg)
    return files


@dataclass
class FileResult:
    file: NabFile
    detections_ms: list[int]
    score: FileScore = field(init=False)
    metrics: WindowMetrics = field(init=False)

    def __post_init__(self) -> None:
        ts = self.file.timestamps
        windows = window_rows(ts, self.file.windows)
        rows = detection_rows(ts, self.detections_ms)
        self.score = score_file(len(ts), windows, rows)
        self.metrics = window_metrics(ts, windows, rows)


# -- detections ---------------------------------------------------------------------------
def reading_dict(device: str, i: int, ts_ms: int, value: float) -> dict[str, Any]:
    """Row ``i`` of a NAB file as a decoded ``UniversalSensorReading``."""
    return {
        "reading_id": f"{device}/generic@{ts_ms}",
        "device_id": device,
        "device_type": "UNKNOWN",
        "sensor_id": f"{device}/generic",
        "capability": "GENERIC",
        "value": value,
        "unit": "",
        "timestamp": ts_ms,
        "sequence": i,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }


def firing_first_seen(alerts: Iterable[Mapping[str, Any]], seen: dict[str, int]) -> None:
    """Record ``first_seen`` of every alert id's first FIRING record into ``seen``."""
    for rec in alerts:
        if rec.get("state") == "FIRING" and rec["alert_id"] not in seen:
            seen[rec["alert_id"]] = int(rec["first_seen"])


def offline_detections(
    nab_file: NabFile,
    settings: Settings,
    tick_every: int = TICK_EVERY,
    overrides: Mapping[str, Any] | None = None,
) -> list[int]:
    """Feed the file into a fresh detection stage (as the worker builds it, with
    ``DetectionConfig`` ``overrides``); alert times."""
    from streams.detection import detection_stage_from_settings

    stage = detection_stage_from_settings(settings, **(overrides or {}))
    src = ("nab", 0)
    seen: dict[str, int] = {}
    device = nab_file.device
    for i, (ts, value) in enumerate(zip(nab_file.timestamps, nab_file.values, strict=True)):
        stage.observe(src, reading_dict(device, i, ts, value))
        if (i + 1) % tick_every == 0:
            stage.tick([src])
            firing_first_seen(stage.take().alerts, seen)
    stage.tick([src])
    firing_first_seen(stage.take().alerts, seen)
    return sorted(seen.values())


def layout_offsets(files: Sequence[NabFile], gap_ms: int = DAY_MS) -> list[int]:
    """Time shifts that lay the files end to end: file k starts ``gap_ms`` after k-1 ends."""
    offsets: list[int] = []
    end: int | None = None
    for f in files:
        start, last = f.timestamps[0], f.timestamps[-1]
        offset = 0 if end is None else end + gap_ms - start
        offsets.append(offset)
        end = last + offset
    return offsets


def pipeline_detections(
    files: Sequence[NabFile], base: Settings, *, idle_seconds: float = 5.0
) -> tuple[list[list[int]], dict[str, float]]:
    """Replay every file through private Kafka + worker + store; alert times per file."""
    from infra.harness import (
        WorkerProcess,
        discard_private,
        private_settings,
        start_services,
        stop_services,
    )
    from producers.replay import CsvSource, replay
    from schemas import AvroCodec
    from sinks.clickhouse import ClickHouseSink
    from sinks.client import get_client
    from streams.signals.config import DETECTION_SETTINGS
    from topics import READINGS, TopicAdmin, topic_specs
    from topics.producer import RecordProducer

    detection = {name: getattr(base, name) for name in DETECTION_SETTINGS}
    settings = private_settings(base, "envirostream-nab-", idle_close_seconds=2, **detection)
    tmp = settings.data_dir
    log = tmp / "worker.log"
    print(f"  private services under {tmp}", flush=True)
    offsets = layout_offsets(files)
    timings: dict[str, float] = {}
    start_services(settings)
    worker: WorkerProcess | None = None
    try:
        TopicAdmin(settings).create_missing(topic_specs(settings))
        client = get_client(settings)
        ClickHouseSink(client, settings).setup()  # the worker's DDL, idempotent
        worker = WorkerProcess(settings, log)
        codec = AvroCodec()
        t0 = time.perf_counter()
        # Rows sharing a timestamp share a reading id, and the store keeps one of them
        # (NAB has such rows: repeated hours at DST changes), so wait for distinct times.
        expected = {f.device: len(set(f.timestamps)) for f in files}
        producer = RecordProducer(settings)
        for f, offset in zip(files, offsets, strict=True):
            before = producer.delivered
            report = replay(
                CsvSource(f.path, "timestamp", "value"),
                f.device,
                "GENERIC",
                producer,
                codec,
                READINGS,
                speed=0.0,
                time_offset_ms=offset,
            )
            delivered = report.delivered - before
            if report.undelivered or report.skipped or delivered != len(f.timestamps):
                msg = (
                    f"replay of {f.name}: {delivered}/{len(f.timestamps)} delivered, "
                    f"{report.skipped} rows skipped ({report.last_error})"
                )
                raise EnviroStreamError(msg)
        del producer  # release the connection before the broker stops
        timings["replay_s"] = time.perf_counter() - t0

        def stored() -> bool:
            rows = client.query(
                "SELECT device_id, count() FROM readings FINAL GROUP BY device_id"
            ).result_rows
            got = {str(d): int(n) for d, n in rows}
            return all(got.get(d, 0) >= n for d, n in expected.items())

        worker.wait_for("all readings in ClickHouse", stored, 900)
        timings["stored_s"] = time.perf_counter() - t0
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
            "SELECT alert_id, device_id, toUnixTimestamp64Milli(min(first_seen)) "
            "FROM alerts GROUP BY alert_id, device_id"
        ).result_rows
    finally:
        if worker is not None:
            worker.stop()
        stop_services(settings)
    discard_private(settings)  # kept when the run failed: its logs
    by_device: dict[str, list[int]] = {}
    for _alert_id, device, first_seen in rows:
        by_device.setdefault(str(device), []).append(int(first_seen))
    out = []
    for f, offset in zip(files, offsets, strict=True):
        out.append(sorted(t - offset for t in by_device.get(f.device, [])))
    return out, timings


# -- report -------------------------------------------------------------------------------
def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def report_lines(results: Sequence[FileResult], normalized: float) -> list[str]:
    head = (
        f"{'file':<40} {'rows':>6} {'win':>4} {'det':>5} {'TPwin':>5} {'FP':>5} "
        f"{'w.prec':>6} {'recall':>6} {'delay h':>8} {'NAB raw':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        m, s = r.metrics, r.score
        lines.append(
            f"{r.file.device:<40} {len(r.file.timestamps):>6} {len(r.file.windows):>4} "
            f"{m.detections:>5} {s.tp_windows:>5} {s.fp:>5} {_fmt(m.precision, '.2f'):>6} "
            f"{_fmt(m.recall, '.2f'):>6} {_fmt(m.median_delay_hours, '.1f'):>8} {s.raw:>8.3f}"
        )
    null = sum(r.score.null for r in results)
    perfect = sum(r.score.perfect for r in results)
    raw = sum(r.score.raw for r in results)
    lines.append("-" * len(head))
    lines.append(
        f"NAB score, standard profile, {CATEGORY} ({len(results)} files): {normalized:.1f}"
        f"   (raw {raw:.3f}, null {null:.1f}, perfect {perfect:.1f})"
    )
    lines.append("For scale, published NAB scores (standard profile) on the full 58-file corpus:")
    for name, score in REFERENCE_SCORES:
        lines.append(f"  {name:<42} {score:>5.1f}")
    lines.append(f"  (ours is the {CATEGORY} subset only; not directly comparable)")
    return lines


def figures(
    results: Sequence[FileResult], normalized: float, mode: str, seconds: float
) -> dict[str, Any]:
    return {
        "bench": "nab",
        "mode": mode,
        "category": CATEGORY,
        "profile": "standard",
        "nab_score": round(normalized, 2),
        "raw": round(sum(r.score.raw for r in results), 4),
        "windows": sum(len(r.file.windows) for r in results),
        "tp_windows": sum(r.score.tp_windows for r in results),
        "fp": sum(r.score.fp for r in results),
        "detections": sum(r.metrics.detections for r in results),
        "seconds": round(seconds, 1),
        "files": {
            r.file.device: {
                "rows": len(r.file.timestamps),
                "windows": len(r.file.windows),
                "detections": r.metrics.detections,
                "tp_windows": r.score.tp_windows,
                "fp": r.score.fp,
                "precision": r.metrics.precision,
                "recall": r.metrics.recall,
                "median_delay_h": r.metrics.median_delay_hours,
                "raw": round(r.score.raw, 4),
            }
            for r in results
        },
    }


def run_nab_bench(
    settings: Settings, *, offline: bool = False, nab_dir: str | Path | None = None
) -> dict[str, Any]:
    """Run NAB realKnownCause through the detection (pipeline or offline) and score it."""
    root = resolve_nab_dir(nab_dir, settings)
    files = load_corpus(root)
    mode = "offline" if offline else "pipeline"
    rows = sum(len(f.timestamps) for f in files)
    print(f"bench nab ({mode}): {len(files)} files, {rows:,} rows from {root}", flush=True)
    t0 = time.perf_counter()
    if offline:
        detections = [offline_detections(f, settings) for f in files]
    else:
        detections, timings = pipeline_detections(files, settings)
        print(
            f"  replayed in {timings['replay_s']:.1f}s, all stored after "
            f"{timings['stored_s']:.1f}s",
            flush=True,
        )
    seconds = time.perf_counter() - t0
    results = [FileResult(f, d) for f, d in zip(files, detections, strict=True)]
    normalized = corpus_normalized(r.score for r in results)
    for line in report_lines(results, normalized):
        print(line)
    out = figures(results, normalized, mode, seconds)
    print(json.dumps(out))
    return out
