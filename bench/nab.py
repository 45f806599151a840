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

Scoring follows NAB's own scorer (``nab/sweeper.py``, standard profile): rows before the
probationary period (15 % of the file, at most 750 rows) are ignored; the first detection
in a window earns ``A_TP * S(pos)/S(-1)`` with ``S`` the scaled sigmoid of the relative
position in the window (1.0 at the window's start); a window without detection costs
``A_FN``; every detection outside windows costs ``|A_FP| * S(pos)`` by its distance past
the preceding window (``A_FP`` if there is none). The corpus score is normalised as NAB
does: ``100 * (raw - null) / (perfect - null)`` with ``null`` the detector that never
fires and ``perfect`` one detection at every window start.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import json
import math
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import EnviroStreamError
from core.settings import Settings

__all__ = [
    "REFERENCE_SCORES",
    "STANDARD",
    "CostProfile",
    "FileResult",
    "FileScore",
    "NabFile",
    "WindowMetrics",
    "corpus_normalized",
    "detection_rows",
    "layout_offsets",
    "load_corpus",
    "offline_detections",
    "probation_length",
    "reading_dict",
    "resolve_nab_dir",
    "run_nab_bench",
    "scaled_sigmoid",
    "score_file",
    "window_metrics",
    "window_rows",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NAB_DIR = Path("..") / "shared" / "datasets" / "nab"  # relative to REPO_ROOT
CATEGORY = "realKnownCause"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
PROBATION_PERCENT = 0.15
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


# -- NAB scoring (nab/sweeper.py, standard profile) ----------------------------------------
@dataclass(frozen=True)
class CostProfile:
    """NAB's cost matrix (``config/profiles.json``); weights are magnitudes.

    The standard profile is A_TP = 1.0, A_FP = -0.11, A_FN = -1.0 (TN unused).
    """

    tp_weight: float = 1.0
    fp_weight: float = 0.11
    fn_weight: float = 1.0


STANDARD = CostProfile()


def scaled_sigmoid(position: float) -> float:
    """NAB's ``scaledSigmoid``: 2*sigmoid(-5*position) - 1, and -1.0 from position 3 on."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(rows: int, percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start whose detections are ignored: min(floor(p*rows), p*5000)."""
    return min(math.floor(percent * rows), math.ceil(percent * 5000))


def window_rows(
    timestamps: Sequence[int], windows: Iterable[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Each window as (first row, last row) inclusive; windows holding no row are dropped."""
    out = []
    for start, end in windows:
        left = bisect.bisect_left(timestamps, start)
        right = bisect.bisect_right(timestamps, end) - 1
        if left <= right:
            out.append((left, right))
    return out


def detection_rows(timestamps: Sequence[int], detections_ms: Iterable[int]) -> list[int]:
    """The rows detections fall on (the last row at or before each), distinct and sorted.

    NAB's detections are per row, so two detections on one row count once. (Two NAB files
    step back one hour at a DST change; there the row found is approximate.)
    """
    rows = set()
    for t in detections_ms:
        i = bisect.bisect_right(timestamps, t) - 1
        if i >= 0:
            rows.add(i)
    return sorted(rows)


@dataclass(frozen=True)
class FileScore:
    raw: float
    null: float  # the detector that never fires
    perfect: float  # one detection at every window's first row
    tp_windows: int
    fn_windows: int
    fp: int  # scored detections outside every window
    scored_windows: int  # windows not entirely inside the probationary period


def score_file(
    rows: int,
    windows: Sequence[tuple[int, int]],
    detections: Iterable[int],
    profile: CostProfile = STANDARD,
    probation_percent: float = PROBATION_PERCENT,
) -> FileScore:
    """NAB's score of one file from row indices: ``windows`` (sorted, inclusive) and
    ``detections`` (rows where the detector fired)."""
    probation = probation_length(rows, probation_percent)
    max_tp = scaled_sigmoid(-1.0)
    det = sorted({d for d in detections if probation <= d < rows})
    # A window takes part if one of its rows is past the probationary period.
    best: dict[int, float] = {
        k: -profile.fn_weight for k, (_, right) in enumerate(windows) if right >= probation
    }
    fp_score, fp = 0.0, 0
    rights = [r for _, r in windows]
    for i in det:
        k = bisect.bisect_right(rights, i - 1)  # first window whose last row is >= i
        if k < len(windows) and windows[k][0] <= i:
            left, right = windows[k]
            width = right - left + 1
            tp = scaled_sigmoid(-(right - i + 1) / width) * profile.tp_weight / max_tp
            best[k] = max(best[k], tp)
            continue
        fp += 1
        if k == 0:
            position = 3.0  # no preceding window: full cost
        else:
            left, right = windows[k - 1]
            width = right - left + 1
            # NAB divides by (width - 1); a one-row window would divide by zero there.
            position = abs(right - i) / (width - 1) if width > 1 else 3.0
        fp_score += scaled_sigmoid(position) * profile.fp_weight
    tp_windows = sum(1 for v in best.values() if v != -profile.fn_weight)
    return FileScore(
        raw=sum(best.values()) + fp_score,
        null=-profile.fn_weight * len(best),
        perfect=profile.tp_weight * len(windows),
        tp_windows=tp_windows,
        fn_windows=len(best) - tp_windows,
        fp=fp,
        scored_windows=len(best),
    )


def corpus_normalized(scores: Iterable[FileScore]) -> float:
    """NAB's normalised corpus score: 100 * (raw - null) / (perfect - null), over all files.

    As in NAB's ``runner.normalize``, perfect counts every labelled window once at A_TP.
    """
    items = list(scores)
    raw = sum(s.raw for s in items)
    null = sum(s.null for s in items)
    perfect = sum(s.perfect for s in items)
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


@dataclass(frozen=True)
class WindowMetrics:
    detections: int  # distinct detection rows after the probationary period
    in_window: int
    precision: float | None  # in_window / detections
    detected_windows: int
    recall: float | None  # detected_windows / windows
    delays_ms: list[int]  # first detection - window start, per detected window

    @property
    def median_delay_hours(self) -> float | None:
        return statistics.median(self.delays_ms) / HOUR_MS if self.delays_ms else None


def window_metrics(
    timestamps: Sequence[int],
    windows: Sequence[tuple[int, int]],
    detections: Iterable[int],
    probation_percent: float = PROBATION_PERCENT,
) -> WindowMetrics:
    """Window precision and recall and detection delay; ``windows``/``detections`` are rows."""
    probation = probation_length(len(timestamps), probation_percent)
    det = sorted({d for d in detections if probation <= d < len(timestamps)})
    first: dict[int, int] = {}
    in_window = 0
    for i in det:
        for k, (left, right) in enumerate(windows):
            if left <= i <= right:
                in_window += 1
                first.setdefault(k, i)
                break
    delays = [timestamps[i] - timestamps[windows[k][0]] for k, i in sorted(first.items())]
    return WindowMetrics(
        detections=len(det),
        in_window=in_window,
        precision=in_window / len(det) if det else None,
        detected_windows=len(first),
        recall=len(first) / len(windows) if windows else None,
        delays_ms=delays,
    )


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
    from infra.harness import WorkerProcess, private_settings, start_services, stop_services
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
