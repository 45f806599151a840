"""Detection quality: score a detector's alerts against the simulator's labelled incidents.

Pure (no I/O): the caller queries ``readings`` (the ground-truth labels, ``docs/scenarios.md``)
and ``alerts`` (or a baseline's output) and passes plain values in; times are event-time epoch
milliseconds. One :class:`Incident` per failing device, one :class:`AlertRow` per distinct
``alert_id`` (an alert's versions share ``alert_id`` and ``first_seen``).

An alert *belongs* to an incident when it is on the incident's device and its ``first_seen``
is at or after ``onset_ms - grace_ms``; every other alert is false (on a healthy device, on a
failing device before its onset, or on a device that is neither). From that:

* recall = detected incidents / incidents (detected = at least one belonging alert);
* precision = belonging alerts / all alerts on the scenario's devices (overall: / all alerts);
* lead time = ``failure_ms`` - first belonging alert (hours; positive = warned before failure);
* alerts per detected incident (mean, max) and the share of detected incidents with exactly one;
* false alerts on healthy devices per 100 healthy device-days (overall only).

>>> inc = [Incident("m-1", "bearing_wear", onset_ms=3_600_000, failure_ms=7 * 3_600_000)]
>>> alerts = [AlertRow("a1", "m-1", first_seen_ms=4 * 3_600_000)]
>>> r = score_alerts(inc, ["m-2"], alerts, run_start_ms=0, run_end_ms=86_400_000)
>>> o = r.row("overall")
>>> o.recall, o.precision, o.lead_median_h, o.false_per_100_device_days
(1.0, 1.0, 3.0, 0.0)
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace

__all__ = [
    "GRADUAL",
    "AlertRow",
    "Incident",
    "Report",
    "ScenarioRow",
    "format_table",
    "incidents_from_phases",
    "report_json",
    "score_alerts",
]

GRADUAL: tuple[str, ...] = (
    "bearing_wear",
    "thermal_runaway",
    "tyre_slow_leak",
    "transformer_overload",
    "sensor_drift",
)
"""Scenarios that develop slowly (a precursor of 30 min to 6 h): where early warning counts."""

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Incident:
    """One failing device: precursor onset and failure time (epoch ms).

    ``onset_ms`` is the first PRECURSOR reading, or the first FAILURE reading when the
    scenario has no precursor (``step_spike``). ``failure_ms`` is the first FAILURE reading;
    when the run ended during the precursor it is the run end (lead times are then measured
    to the end of the run, a lower bound of the true lead).
    """

    device_id: str
    scenario: str
    onset_ms: int
    failure_ms: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One distinct alert (``alert_id``) with the event time it was first seen."""

    alert_id: str
    device_id: str
    first_seen_ms: int
    rule: str = ""
    severity: str = ""


@dataclass(frozen=True, slots=True)
class ScenarioRow:
    """The figures of one scenario (or of ``overall`` / ``gradual``).

    Ratios are ``None`` when undefined: recall without incidents, precision without alerts,
    lead times and alert counts without detected incidents. ``false_per_100_device_days`` is
    set on the ``overall`` row only.
    """

    scenario: str
    incidents: int
    detected: int
    alerts: int  # all alerts on the devices of these incidents (overall: all alerts)
    true_alerts: int  # of which belong to an incident
    recall: float | None
    precision: float | None
    f1: float | None
    lead_median_h: float | None
    lead_worst_h: float | None
    alerts_per_incident_mean: float | None
    alerts_per_incident_max: int | None
    one_alert_share: float | None
    false_per_100_device_days: float | None = None


@dataclass(frozen=True, slots=True)
class Report:
    """Rows per scenario (sorted by name), then ``gradual``, then ``overall``."""

    rows: list[ScenarioRow]
    healthy_devices: int
    healthy_alerts: int
    healthy_device_days: float

    def row(self, scenario: str) -> ScenarioRow:
        """The row of ``scenario`` (``KeyError`` if absent)."""
        for r in self.rows:
            if r.scenario == scenario:
                return r
        raise KeyError(scenario)


def incidents_from_phases(
    rows: Iterable[tuple[str, str, str, int]], *, run_end_ms: int | None = None
) -> list[Incident]:
    """Incidents from ``(device_id, scenario, phase, min_ts_ms)`` rows.

    The rows are the result of ``SELECT device_id, scenario, phase, min(ts) FROM readings
    WHERE scenario != '' GROUP BY device_id, scenario, phase`` (``ts`` as epoch ms). A device
    whose readings are all NORMAL (onset after the run end) has no incident. A device that
    never reached FAILURE gets ``failure_ms = run_end_ms`` (``ValueError`` if not given).
    Sorted by device and scenario.

    >>> rows = [("b-1", "thermal_runaway", "NORMAL", 0),
    ...         ("b-1", "thermal_runaway", "PRECURSOR", 10),
    ...         ("b-1", "thermal_runaway", "FAILURE", 40),
    ...         ("v-1", "step_spike", "FAILURE", 30)]
    >>> for incident in incidents_from_phases(rows):
    ...     print(incident)
    Incident(device_id='b-1', scenario='thermal_runaway', onset_ms=10, failure_ms=40)
    Incident(device_id='v-1', scenario='step_spike', onset_ms=30, failure_ms=30)
    """
    phases: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for device_id, scenario, phase, ts in rows:
        if not scenario:
            continue
        seen = phases[(device_id, scenario)]
        key = phase.upper()
        seen[key] = min(int(ts), seen.get(key, int(ts)))
    out = []
    for (device_id, scenario), seen in sorted(phases.items()):
        failure = seen.get("FAILURE")
        onset = seen.get("PRECURSOR", failure)
        if onset is None:
            continue  # only NORMAL readings: the fault had not started when the run ended
        if failure is None:
            if run_end_ms is None:
                msg = f"{device_id} ({scenario}) never reached FAILURE: pass run_end_ms"
                raise ValueError(msg)
            failure = run_end_ms
        out.append(Incident(device_id, scenario, onset, failure))
    return out


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _f1(precision: float | None, recall: float | None) -> float | None:
    if recall is None:
        return None
    if not precision or not recall:
        return 0.0  # no alerts, or none belonging: nothing detected
    return 2 * precision * recall / (precision + recall)


def _row(
    name: str,
    incidents: Sequence[Incident],
    belonging: Mapping[Incident, Sequence[AlertRow]],
    alerts: int,
    true_alerts: int,
) -> ScenarioRow:
    detected = [i for i in incidents if belonging.get(i)]
    leads = [
        (i.failure_ms - min(a.first_seen_ms for a in belonging[i])) / _HOUR_MS for i in detected
    ]
    counts = [len(belonging[i]) for i in detected]
    recall = _ratio(len(detected), len(incidents))
    precision = _ratio(true_alerts, alerts)
    return ScenarioRow(
        scenario=name,
        incidents=len(incidents),
        detected=len(detected),
        alerts=alerts,
        true_alerts=true_alerts,
        recall=recall,
        precision=precision,
        f1=_f1(precision, recall),
        lead_median_h=statistics.median(leads) if leads else None,
        lead_worst_h=min(leads) if leads else None,
        alerts_per_incident_mean=statistics.fmean(counts) if counts else None,
        alerts_per_incident_max=max(counts) if counts else None,
        one_alert_share=_ratio(sum(c == 1 for c in counts), len(counts)),
    )


def score_alerts(
    incidents: Iterable[Incident],
    healthy_devices: Collection[str],
    alerts: Iterable[AlertRow],
    *,
    run_start_ms: int,
    run_end_ms: int,
    grace_ms: int = 0,
    gradual: Collection[str] = GRADUAL,
) -> Report:
    """Score ``alerts`` against ``incidents``; see the module docstring for the definitions.

    ``healthy_devices`` are the devices without a label (their count and the run length give
    the healthy device-days). ``grace_ms`` lets an alert up to that long before the onset
    count (a detector may legitimately see the very start of a precursor early). A device
    with several incidents gives each alert to the latest incident it qualifies for.
    Alerts with the same ``alert_id`` are counted once.
    """
    incidents = list(incidents)
    healthy = set(healthy_devices)
    by_device: dict[str, list[Incident]] = defaultdict(list)
    for inc in incidents:
        by_device[inc.device_id].append(inc)
    overlap = healthy & by_device.keys()
    if overlap:
        msg = f"devices both healthy and failing: {sorted(overlap)[:5]}"
        raise ValueError(msg)
    for incs in by_device.values():
        incs.sort(key=lambda i: i.onset_ms, reverse=True)

    unique = list({a.alert_id: a for a in alerts}.values())
    belonging: dict[Incident, list[AlertRow]] = defaultdict(list)
    on_device: Counter[str] = Counter()
    healthy_alerts = 0
    for a in unique:
        on_device[a.device_id] += 1
        if a.device_id in healthy:
            healthy_alerts += 1
            continue
        for inc in by_device.get(a.device_id, ()):
            if a.first_seen_ms >= inc.onset_ms - grace_ms:
                belonging[inc].append(a)
                break

    def group(name: str, group_incidents: list[Incident], all_alerts: int | None) -> ScenarioRow:
        devices = {i.device_id for i in group_incidents}
        alerts_n = sum(on_device[d] for d in devices) if all_alerts is None else all_alerts
        true_n = sum(len(belonging[i]) for i in group_incidents if i in belonging)
        return _row(name, group_incidents, belonging, alerts_n, true_n)

    by_scenario: dict[str, list[Incident]] = defaultdict(list)
    for inc in incidents:
        by_scenario[inc.scenario].append(inc)
    rows = [group(name, by_scenario[name], None) for name in sorted(by_scenario)]
    gradual_set = set(gradual)
    rows.append(group("gradual", [i for i in incidents if i.scenario in gradual_set], None))
    device_days = len(healthy) * (run_end_ms - run_start_ms) / _DAY_MS
    overall = group("overall", incidents, len(unique))
    false_rate = _ratio(healthy_alerts * 100, device_days)
    rows.append(replace(overall, false_per_100_device_days=false_rate))
    return Report(rows, len(healthy), healthy_alerts, device_days)


def report_json(report: Report) -> dict[str, object]:
    """A JSON-ready dict: ``{"rows": {scenario: {figure: value}}, "healthy_...": ...}``.

    Floats are rounded to 4 decimals; undefined figures are ``None`` (JSON ``null``).
    """

    def clean(v: object) -> object:
        return round(v, 4) if isinstance(v, float) else v

    return {
        "rows": {
            r.scenario: {k: clean(v) for k, v in asdict(r).items() if k != "scenario"}
            for r in report.rows
        },
        "healthy_devices": report.healthy_devices,
        "healthy_alerts": report.healthy_alerts,
        "healthy_device_days": clean(report.healthy_device_days),
        "false_per_100_healthy_device_days": clean(report.row("overall").false_per_100_device_days),
    }


_COLUMNS: tuple[tuple[str, int], ...] = (
    ("recall", 6),
    ("prec", 6),
    ("F1", 6),
    ("lead med h", 10),
    ("lead min h", 10),
    ("alerts/inc", 10),
    ("1-alert", 7),
)


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def _cells(row: ScenarioRow | None) -> list[str]:
    if row is None:
        return ["-"] * len(_COLUMNS)
    per_inc = (
        "-"
        if row.alerts_per_incident_mean is None
        else f"{row.alerts_per_incident_mean:.1f}/{row.alerts_per_incident_max}"
    )
    return [
        _fmt(row.recall, ".2f"),
        _fmt(row.precision, ".2f"),
        _fmt(row.f1, ".2f"),
        _fmt(row.lead_median_h, ".2f"),
        _fmt(row.lead_worst_h, ".2f"),
        per_inc,
        _fmt(row.one_alert_share, ".2f"),
    ]


def format_table(reports: Mapping[str, Report]) -> str:
    """Several detectors' reports side by side in one fixed-width table.

    One line per scenario (then ``gradual`` and ``overall``); ``n`` is the number of
    incidents (``a/b`` if the reports disagree); per detector: recall, precision, F1, median
    and worst (smallest) lead time in hours, alerts per detected incident as ``mean/max``,
    and the share of detected incidents with exactly one alert. The footer gives the false
    alerts per 100 healthy device-days of each detector. ``-`` = undefined.

    >>> r = score_alerts([Incident("d", "dropout", 0, 10)], [], [], run_start_ms=0, run_end_ms=10)
    >>> print(format_table({"x": r}).splitlines()[-1])
    false alerts / 100 healthy device-days: x -
    """
    names = list(reports)
    special = ("gradual", "overall")
    scenarios = sorted({r.scenario for rep in reports.values() for r in rep.rows} - set(special))
    lookup = {name: {r.scenario: r for r in rep.rows} for name, rep in reports.items()}
    group_width = sum(w for _, w in _COLUMNS) + len(_COLUMNS) - 1
    label_w = max([len(s) for s in (*scenarios, *special)] + [8])
    head = [" " * label_w, " " * 5]
    sub = ["scenario".ljust(label_w), "n".rjust(5)]
    for name in names:
        head.append(name[:group_width].center(group_width, "-"))
        sub.append(" ".join(title.rjust(w) for title, w in _COLUMNS))
    lines = [" | ".join(head), " | ".join(sub), "-" * len(" | ".join(sub))]
    for scenario in (*scenarios, *special):
        rows = [lookup[name].get(scenario) for name in names]
        ns = sorted({r.incidents for r in rows if r is not None})
        cells = [scenario.ljust(label_w), "/".join(map(str, ns)).rjust(5)]
        for row in rows:
            cells.append(
                " ".join(c.rjust(w) for c, (_, w) in zip(_cells(row), _COLUMNS, strict=True))
            )
        lines.append(" | ".join(cells))
    footer = ", ".join(
        f"{name} {_fmt(rep.row('overall').false_per_100_device_days, '.2f')}"
        for name, rep in reports.items()
    )
    lines.append(f"false alerts / 100 healthy device-days: {footer}")
    return "\n".join(lines)
