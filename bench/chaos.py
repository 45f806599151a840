"""``envirostream bench chaos``: every valid reading is kept while the pipeline is hurt.

On private services (own broker, store, data dir and ports; :mod:`infra.harness`), for
``--minutes`` of wall time:

* a seeded fleet streams in real time at 1 Hz; about a quarter of its devices suffer a
  ``gateway_outage`` (readings withheld, then flushed late) or a ``clock_skew`` (stamps off by
  2 s-2 min plus drift), with onsets scaled to the run;
* the worker is SIGKILLed every 30 s and restarted (held while a service is down: one fault
  at a time, so a failure names its cause);
* a few malformed records (garbage bytes, truncated Avro) are injected;
* the broker is stopped for twice ``ENVIROSTREAM_IDLE_CLOSE_SECONDS`` (the worker idle-closes
  its windows meanwhile; the backlog then arrives late for them) and restarted;
* a recorded CSV (NAB's ``ambient_temperature_system_failure``, 2013-2014 hourly) and a
  generated one spanning ``--years`` (30) of monthly rows are replayed at full speed mid-run;
* the store is stopped for ``6 s x --minutes`` (60 s for the default 10), unless
  ``--no-store-outage``.

Then the fleet stops, the pipeline drains and the worker is stopped cleanly, and
:mod:`bench.chaos_check` compares what was produced with what was stored. The last line is
JSON: ``produced``, ``stored``, ``lost``, ``duplicated``, ``windows_checked``,
``mismatches``, alerts per incident, ``duplicate_notifications`` and dead letters by reason.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.chaos_check import (
    compare_windows,
    dead_letters_by_reason,
    duplicate_notifications,
    read_alerts,
    recomputed_windows,
    store_counts,
    stored_reading_ids,
    stored_windows,
)
from bench.chaos_load import (
    FleetFeed,
    chaos_fleet,
    history_csv,
    inject_malformed,
    replay_csv,
    write_years_csv,
)
from core.errors import EnviroStreamError
from core.settings import Settings
from infra.harness import (
    WorkerProcess,
    discard_private,
    private_settings,
    start_services,
    stop_services,
)
from infra.kafka import start_kafka, stop_kafka
from infra.store import start_store, stop_store
from producers.fleet import Fleet
from schemas import AvroCodec
from sinks.client import get_client
from topics import TopicAdmin, topic_specs

__all__ = ["ChaosEvent", "chaos_schedule", "run_chaos_bench"]

KILL_EVERY_S = 30.0
HISTORY_DEVICE, YEARS_DEVICE = "chaos-history", "chaos-years"


@dataclass(frozen=True)
class ChaosEvent:
    at_s: float  # seconds after the fleet started
    action: str  # kill | malformed | broker_outage | replay_history | replay_years | store_outage
    seconds: float = 0.0  # how long a service stays down


def chaos_schedule(
    run_s: float, idle_close_s: float, *, store_outage: bool, kill_every_s: float = KILL_EVERY_S
) -> list[ChaosEvent]:
    """The faults of a run, in order. A kill due while a service is down (or within 15 s of
    its return) waits until then; the next one comes ``kill_every_s`` later.

    >>> for e in chaos_schedule(90, 5, store_outage=False): print(e.at_s, e.action, e.seconds)
    9.0 malformed 0.0
    18.0 broker_outage 10.0
    36.0 replay_history 0.0
    43.0 kill 0.0
    45.0 replay_years 0.0
    73.0 kill 0.0
    >>> [e.action for e in chaos_schedule(600, 30, store_outage=True) if e.seconds]
    ['broker_outage', 'store_outage']
    >>> [e.seconds for e in chaos_schedule(600, 30, store_outage=True) if e.seconds]
    [60.0, 60.0]
    """
    events = [
        ChaosEvent(0.1 * run_s, "malformed"),
        ChaosEvent(0.2 * run_s, "broker_outage", 2.0 * idle_close_s),
        ChaosEvent(0.4 * run_s, "replay_history"),
        ChaosEvent(0.5 * run_s, "replay_years"),
    ]
    if store_outage:
        events.append(ChaosEvent(0.65 * run_s, "store_outage", round(run_s / 10.0, 1)))
    down = [(e.at_s - 5.0, e.at_s + e.seconds + 15.0) for e in events if e.seconds]
    t = kill_every_s
    while t < run_s:
        held = next((end for start, end in down if start <= t <= end), None)
        t = held if held is not None else t  # a kill due while a service is down waits
        if t < run_s:
            events.append(ChaosEvent(t, "kill"))
        t += kill_every_s
    return sorted(events, key=lambda e: e.at_s)


class _Workers:
    """The worker subprocess: killed and restarted on schedule; unplanned exits recorded."""

    def __init__(self, settings: Settings, log: Path, clock: Callable[[], float]) -> None:
        self.settings, self.log, self.clock = settings, log, clock
        self.proc = WorkerProcess(settings, log)
        self.kills = 0
        self.exits: Counter[str] = Counter()  # unplanned exits by their last error line
        self.first_exit_s: float | None = None

    def kill_and_restart(self) -> None:
        self.proc.kill()
        self.kills += 1
        self.proc = WorkerProcess(self.settings, self.log)

    def hold(self, seconds: float) -> None:
        """Wait ``seconds`` (a service is down), noting any unplanned exit meanwhile."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.check()
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))

    def check(self) -> None:
        code = self.proc.returncode
        if code is not None:
            errors = [ln for ln in self.proc.tail(60).splitlines() if "Error" in ln]
            why = errors[-1].strip()[:200] if errors else "(no error in the log)"
            self.exits[f"exit {code}: {why}"] += 1
            if self.first_exit_s is None:
                self.first_exit_s = round(self.clock(), 1)
            print(f"  worker exited unplanned ({code}): {why}; restarting", flush=True)
            self.proc.stop()
            self.proc = WorkerProcess(self.settings, self.log)


def _drain(settings: Settings, workers: _Workers, expected: int, timeout: float) -> float:
    """Wait until every reading is stored, the aggregates stop changing and equal the readings."""
    client = get_client(settings)
    t0 = time.monotonic()
    quiet_s = settings.idle_close_seconds + 10.0
    last: tuple[int, int] | None = None
    since = t0
    while time.monotonic() - t0 < timeout:
        workers.check()
        stored = int(client.query("SELECT count() FROM readings FINAL").result_rows[0][0])
        agg = client.query("SELECT count(), sum(count) FROM aggregates FINAL").result_rows[0]
        now = (stored, int(agg[1] or 0))
        if now != last:
            last, since = now, time.monotonic()
        elif stored >= expected and time.monotonic() - since >= quiet_s:
            # Quiet is not proof under load: a late-data correction may still be on its way.
            # Return once every window also equals its recomputation; a window that stays
            # wrong keeps the drain waiting until the timeout, and the check reports it.
            recomputed = recomputed_windows(client, round(settings.window_seconds * 1000))
            if not compare_windows(recomputed, stored_windows(client)):
                return time.monotonic() - t0
            since = time.monotonic()
        time.sleep(2.0)
    print(f"  drain timed out after {timeout:.0f}s at {last} (expected {expected})", flush=True)
    return time.monotonic() - t0


def run_chaos_bench(
    base: Settings,
    *,
    minutes: float = 10.0,
    devices: int = 40,
    seed: int = 7,
    store_outage: bool = True,
    years: int = 30,
    nab_dir: str | None = None,
) -> dict[str, Any]:
    if not 0.5 <= minutes <= 24 * 60:
        msg = f"--minutes must be between 0.5 and 1440, got {minutes}"
        raise EnviroStreamError(msg)
    if not 1 <= years <= 60:
        msg = f"--years must be between 1 and 60 (the replayed series' span), got {years}"
        raise EnviroStreamError(msg)
    if devices < 4:
        msg = f"--devices must be >= 4 (one per kind), got {devices}"
        raise EnviroStreamError(msg)
    run_s = minutes * 60.0
    settings = private_settings(
        base,
        "envirostream-chaos-",
        idle_close_seconds=10,
        session_timeout_seconds=6,
        commit_interval_seconds=1,
        worker_batch_seconds=0.5,
        sink_batch_seconds=1,
    )
    codec, tmp = AvroCodec(), settings.data_dir
    fleet = chaos_fleet(devices, seed, run_s)
    afflicted = Counter(fleet.assignments.values())
    schedule = chaos_schedule(run_s, settings.idle_close_seconds, store_outage=store_outage)
    print(
        f"bench chaos: {minutes:g} min, {devices} devices at 1 Hz "
        f"({afflicted['gateway_outage']} gateway_outage, {afflicted['clock_skew']} clock_skew),"
        f" private services under {tmp}",
        flush=True,
    )
    start_services(settings)
    feed: FleetFeed | None = None
    workers: _Workers | None = None
    ids: set[str] = set()
    counts = Counter[str]()
    try:
        TopicAdmin(settings).create_missing(topic_specs(settings))
        t0 = time.monotonic()
        workers = _Workers(settings, tmp / "worker.log", lambda: time.monotonic() - t0)
        workers.proc.wait_healthy()
        feed = FleetFeed(fleet, settings, codec)
        t0 = time.monotonic()
        feed.start()
        for event in schedule:
            while time.monotonic() - t0 < event.at_s:
                workers.check()
                time.sleep(0.5)
            print(f"  t={time.monotonic() - t0:5.0f}s {event.action}", flush=True)
            if event.action == "kill":
                workers.kill_and_restart()
            elif event.action == "malformed":
                counts["malformed"] += inject_malformed(settings, codec)
            elif event.action == "broker_outage":
                stop_kafka(settings)
                workers.hold(event.seconds)
                start_kafka(settings)
            elif event.action == "store_outage":
                stop_store(settings)
                workers.hold(event.seconds)
                start_store(settings)
            else:
                if event.action == "replay_years":
                    path, device, what = (
                        write_years_csv(tmp / "years.csv", years),
                        YEARS_DEVICE,
                        "years",
                    )
                else:
                    path, device, what = history_csv(settings, nab_dir), HISTORY_DEVICE, "history"
                sent = replay_csv(settings, path, device, codec)
                counts[what] += len(sent)
                ids |= sent
        while time.monotonic() - t0 < run_s:
            workers.check()
            time.sleep(0.5)
        feed.stop_event.set()
        feed.join(timeout=180)
        if feed.error is not None:
            msg = f"the fleet stopped: {feed.error}"
            raise EnviroStreamError(msg) from feed.error
        ids |= feed.ids
        counts["fleet"] = len(feed.ids)
        print(f"  fleet stopped after {time.monotonic() - t0:.0f}s; draining", flush=True)
        drain_s = _drain(settings, workers, len(ids), timeout=max(300.0, run_s))
        workers.proc.stop()
        figures = _check(settings, codec, fleet, ids)
    finally:
        if feed is not None:
            feed.stop_event.set()
        if workers is not None:
            workers.proc.stop()
        stop_services(settings)
    discard_private(settings)  # kept when the run failed: its logs
    figures = {
        "minutes": minutes,
        "years": years,
        "devices": devices,
        "seed": seed,
        "gateway_outage_devices": afflicted["gateway_outage"],
        "clock_skew_devices": afflicted["clock_skew"],
        "produced_fleet": counts["fleet"],
        "produced_history": counts["history"],
        "produced_years": counts["years"],
        "malformed_injected": counts["malformed"],
        "worker_kills": workers.kills,
        "worker_unplanned_exits": sum(workers.exits.values()),
        "worker_exit_reasons": dict(workers.exits),
        "first_unplanned_exit_s": workers.first_exit_s,
        "broker_outage_s": next(e.seconds for e in schedule if e.action == "broker_outage"),
        "store_outage_s": sum(e.seconds for e in schedule if e.action == "store_outage"),
        "drain_s": round(drain_s, 1),
        **figures,
    }
    _report(figures)
    return figures


def _check(settings: Settings, codec: AvroCodec, fleet: Fleet, ids: set[str]) -> dict[str, Any]:
    client = get_client(settings)
    store = store_counts(client)
    lost = sorted(ids - stored_reading_ids(client))
    recomputed = recomputed_windows(client, round(settings.window_seconds * 1000))
    mismatches = compare_windows(recomputed, stored_windows(client))
    alerts = read_alerts(settings, codec)
    group = {**dict.fromkeys(fleet.device_ids, "healthy"), **fleet.assignments}
    per_group: dict[str, set[str]] = {g: set() for g in [*group.values(), "replayed"]}
    rules: dict[str, Counter[str]] = {}
    for a in alerts:
        g = group.get(a["device_id"], "replayed")
        if a["alert_id"] not in per_group.setdefault(g, set()):
            rules.setdefault(g, Counter())[a["rule"]] += 1
        per_group[g].add(a["alert_id"])
    devices_in = Counter(group.values())
    devices_in["replayed"] = 2  # the recorded CSV and the 30-year series
    by_reason, injected, other = dead_letters_by_reason(settings)
    return {
        "produced": len(ids),
        "stored": store.stored,
        "lost": len(lost),
        "lost_sample": lost[:5],
        "duplicated": store.duplicated,
        "raw_rows_before_optimize": store.raw_before_optimize,
        "windows_checked": len(recomputed),
        "mismatches": len(mismatches),
        "mismatch_sample": mismatches[:5],
        "alerts_per_incident": {
            g: {"devices": devices_in[g], "alerts": len(a)} for g, a in sorted(per_group.items())
        },
        "alert_rules": {g: dict(c) for g, c in sorted(rules.items())},
        "alert_records": len(alerts),
        "duplicate_notifications": duplicate_notifications(
            (a["alert_id"], a["state"], a["version"]) for a in alerts
        ),
        "dlq_by_reason": by_reason,
        "dlq_injected": injected,
        "dlq_other": other,
    }


def _report(f: dict[str, Any]) -> None:
    print(
        f"  produced {f['produced']:,} readings (fleet {f['produced_fleet']:,}, "
        f"history {f['produced_history']:,}, years {f['produced_years']:,}); "
        f"stored {f['stored']:,}; lost {f['lost']}; duplicated {f['duplicated']}"
    )
    print(f"  windows checked {f['windows_checked']:,}; mismatches {f['mismatches']}")
    for line in f["mismatch_sample"]:
        print(f"    {line}")
    print(
        f"  alert records {f['alert_records']}; duplicate notifications "
        f"{f['duplicate_notifications']}; per incident {f['alerts_per_incident']}"
    )
    print(
        f"  dead letters {f['dlq_by_reason']} (injected {f['dlq_injected']} of "
        f"{f['malformed_injected']}, other {f['dlq_other']})"
    )
    exits = f"unplanned exits {f['worker_unplanned_exits']}"
    if f["worker_unplanned_exits"]:
        exits += f" (first at {f['first_unplanned_exit_s']}s: {f['worker_exit_reasons']})"
    print(
        f"  worker kills {f['worker_kills']}, {exits}; broker down {f['broker_outage_s']:g}s, "
        f"store down {f['store_outage_s']:g}s"
    )
    print(json.dumps(f))
