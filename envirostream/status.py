"""``envirostream status [--watch]``: a one-screen health summary of a running pipeline.

Read from the worker's live ``/metrics`` (rates, lag, dead letters, latency percentiles,
alerts, silent devices) and the ClickHouse store (rows, firing alerts). The parsing and
the arithmetic are pure functions over scraped samples; only ``scrape`` and
``store_counts`` do I/O.
"""

from __future__ import annotations

import logging
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from core.settings import Settings

__all__ = ["Sample", "histogram_quantile", "parse_metrics", "render", "run_status"]

Labels = tuple[tuple[str, str], ...]


@dataclass
class Sample:
    """The worker's metrics at one moment: ``{name: {labels: value}}``."""

    at: float
    series: dict[str, dict[Labels, float]] = field(default_factory=dict)
    up: bool = False

    def total(self, name: str, **match: str) -> float:
        return sum(
            v
            for labels, v in self.series.get(name, {}).items()
            if all(dict(labels).get(k) == want for k, want in match.items())
        )

    def by(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for labels, v in self.series.get(name, {}).items():
            key = dict(labels).get(label, "")
            out[key] = out.get(key, 0.0) + v
        return out


def parse_metrics(text: str, at: float) -> Sample:
    sample = Sample(at=at, up=True)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            sample.series.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return sample


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus's estimate from cumulative ``{upper bound: count}`` (linear in a bucket).

    >>> histogram_quantile(0.5, {0.1: 50, 1.0: 100, float("inf"): 100})
    0.1
    >>> histogram_quantile(0.99, {0.1: 0, 1.0: 100, float("inf"): 100})
    0.991
    """
    edges = sorted(buckets)
    if not edges or buckets[edges[-1]] <= 0:
        return None
    rank = q * buckets[edges[-1]]
    lower, below = 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if edge == float("inf"):
                return lower
            return round(lower + (edge - lower) * (rank - below) / max(count - below, 1e-12), 6)
        lower, below = edge, count
    return lower


def _latency_buckets(cur: Sample, prev: Sample | None, table: str) -> dict[float, float]:
    """Bucket counts of the last interval (all time when there is no previous sample)."""
    name = "envirostream_event_to_sink_latency_seconds_bucket"

    def counts(s: Sample) -> dict[float, float]:
        out: dict[float, float] = {}
        for labels, v in s.series.get(name, {}).items():
            d = dict(labels)
            if d.get("table") == table:
                out[float(d["le"])] = v
        return out

    now = counts(cur)
    before = counts(prev) if prev is not None else {}
    recent = {le: v - before.get(le, 0.0) for le, v in now.items()}
    return recent if prev is not None and max(recent.values(), default=0) > 0 else now


def _fmt_seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def render(
    cur: Sample, prev: Sample | None, store: Mapping[str, Any], settings: Settings
) -> list[str]:
    """The summary lines; rates need ``prev`` (a sample taken a few seconds before)."""
    dt = cur.at - prev.at if prev is not None else 0.0

    def rate(name: str, **match: str) -> str:
        if prev is None or dt <= 0 or not prev.up:
            return "      -"
        return f"{(cur.total(name, **match) - prev.total(name, **match)) / dt:>7,.0f}/s"

    lag = cur.by("envirostream_consumer_lag_records", "topic")
    dlq = cur.by("envirostream_records_dead_lettered_total", "reason")
    firing = cur.by("envirostream_alerts_firing", "severity")
    rows = store.get("rows", {})
    lines = [
        f"EnviroStream status   worker :{settings.metrics_port} "
        f"{'up' if cur.up else 'NOT ANSWERING'}   store {settings.store_url} "
        f"{'up' if store.get('up') else 'NOT ANSWERING'}",
        "",
        f"  in        readings {rate('envirostream_readings_consumed_total')}   "
        f"total {cur.total('envirostream_readings_consumed_total'):>14,.0f}",
        f"  out       rows     {rate('envirostream_sink_rows_total')}   "
        + "   ".join(
            f"{t} {v:,.0f}"
            for t, v in sorted(cur.by("envirostream_sink_rows_total", "table").items())
        ),
        "  lag       "
        + ("   ".join(f"{t} {v:,.0f}" for t, v in sorted(lag.items())) or "-")
        + " records",
        f"  dead      {rate('envirostream_records_dead_lettered_total')}   "
        + ("   ".join(f"{r} {v:,.0f}" for r, v in sorted(dlq.items())) or "none"),
    ]
    for table in ("readings", "aggregates"):
        buckets = _latency_buckets(cur, prev, table)
        p50, p99 = histogram_quantile(0.5, buckets), histogram_quantile(0.99, buckets)
        lines.append(
            f"  latency   {table:<10} event→sink p50 {_fmt_seconds(p50)}   p99 {_fmt_seconds(p99)}"
        )
    lines += [
        "  alerts    firing "
        + "   ".join(f"{s} {firing.get(s, 0):,.0f}" for s in ("critical", "warning", "info"))
        + (f"   (store: {store['alerts_firing']:,} firing)" if "alerts_firing" in store else ""),
        f"  devices   silent {cur.total('envirostream_devices_silent'):,.0f} of "
        f"{cur.total('envirostream_devices_known'):,.0f} known "
        f"(no reading for {settings.silent_device_seconds:g}s)",
        "  stored    " + ("   ".join(f"{t} {n:,}" for t, n in rows.items()) or "-"),
    ]
    return lines


def scrape(port: int, at: float) -> Sample:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return parse_metrics(resp.read().decode(), at)
    except OSError:
        return Sample(at=at)


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | str) else 0


def store_counts(settings: Settings) -> dict[str, Any]:
    from sinks.client import get_client

    out: dict[str, Any] = {"up": False, "rows": {}}
    # The driver logs every refused connection; a down store is shown in the summary.
    driver_log = logging.getLogger("clickhouse_connect")
    level = driver_log.level
    driver_log.setLevel(logging.CRITICAL)
    try:
        client = get_client(settings)
        for table in ("readings", "aggregates", "alerts"):
            out["rows"][table] = _count(client.command(f"SELECT count() FROM {table}"))
        out["alerts_firing"] = _count(
            client.command("SELECT count() FROM alerts FINAL WHERE state = 'FIRING'")
        )
        out["up"] = True
    except Exception:  # a down store (or a missing table) is shown, not raised
        out["up"] = bool(out["rows"])
    finally:
        driver_log.setLevel(level)
    return out


def run_status(
    settings: Settings,
    watch: bool = False,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Print the summary once (rates over one second), or redraw it every ``interval``."""
    prev = scrape(settings.metrics_port, clock())
    time.sleep(1.0 if not watch else min(interval, 1.0))
    tty = sys.stdout.isatty()
    try:
        while True:
            cur = scrape(settings.metrics_port, clock())
            lines = render(cur, prev, store_counts(settings), settings)
            if watch and tty:
                sys.stdout.write("\x1b[H\x1b[2J")
            print("\n".join(lines), flush=True)
            if not watch:
                return 0 if cur.up else 1
            prev = cur
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
