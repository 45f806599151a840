"""Labelled series with known label values exist at 0 before the first event, so
``rate()`` and absence-based rules work from the first scrape; the dead-letter reason
catalogue they start from names every reason the code can produce."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from core.metrics import CHECKPOINT_REJECTIONS, SEVERITIES, PipelineMetrics
from sinks.ddl import TABLES
from streams.validate import REASONS

ROOT = Path(__file__).resolve().parents[2]


def _fresh() -> CollectorRegistry:
    return PipelineMetrics(CollectorRegistry(), tables=TABLES, dead_letter_reasons=REASONS).registry


def _zero_series() -> list[tuple[str, dict[str, str]]]:
    """(sample name, labels) of every series the contract says starts at 0."""
    series: list[tuple[str, dict[str, str]]] = []
    for table in TABLES:
        for name in (
            "envirostream_sink_errors_total",
            "envirostream_sink_rows_total",
            "envirostream_sink_batch_duration_seconds_count",
            "envirostream_event_to_sink_latency_seconds_count",
        ):
            series.append((name, {"table": table}))
    for reason in REASONS:
        series.append(("envirostream_records_dead_lettered_total", {"reason": reason}))
    for severity in SEVERITIES:
        series.append(("envirostream_alerts_firing", {"severity": severity}))
        series.append(("envirostream_duplicate_alerts_suppressed_total", {"severity": severity}))
    for reason in CHECKPOINT_REJECTIONS:
        series.append(("envirostream_checkpoints_rejected_total", {"reason": reason}))
    for outcome in ("sent", "failed"):
        series.append(("envirostream_alertmanager_alerts_forwarded_total", {"outcome": outcome}))
    for action in ("ack", "false_positive"):
        for outcome in ("applied", "unknown_alert"):
            labels = {"action": action, "outcome": outcome}
            series.append(("envirostream_alert_feedback_total", labels))
    return series


@pytest.mark.parametrize(("name", "labels"), _zero_series())
def test_fresh_metrics_expose_each_known_series_at_zero(name: str, labels: dict[str, str]) -> None:
    assert _fresh().get_sample_value(name, labels) == 0.0


def test_the_sinks_tables_are_all_covered() -> None:
    assert set(TABLES) == {"readings", "aggregates", "anomalies", "alerts"}


def test_a_value_outside_the_known_set_still_gets_its_series() -> None:
    metrics = PipelineMetrics(CollectorRegistry(), tables=["readings"])
    metrics.sink_errors.labels("elsewhere").inc()
    assert (
        metrics.registry.get_sample_value("envirostream_sink_errors_total", {"table": "elsewhere"})
        == 1.0
    )
    assert (
        metrics.registry.get_sample_value("envirostream_sink_errors_total", {"table": "readings"})
        == 0.0
    )


def _string_constants(node: ast.AST) -> set[str]:
    return {
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }


def _reasons_in_code() -> set[str]:
    """Reason literals: ``reason = ...``/``reason=...`` in the codec, the reason argument of
    every ``DeadLetter(...)`` in streams/, and the first item returned by ``check_reading``."""
    found: set[str] = set()
    codec = ast.parse((ROOT / "schemas" / "codec.py").read_text())
    for node in ast.walk(codec):
        if isinstance(node, ast.Assign):
            targets = [getattr(t, "id", getattr(t, "attr", "")) for t in node.targets]
            value: ast.AST | None = node.value if "reason" in targets else None
        else:
            value = node.value if isinstance(node, ast.keyword) and node.arg == "reason" else None
        if value is not None:
            found |= _string_constants(value)
    for path in sorted((ROOT / "streams").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "DeadLetter"
                and len(node.args) >= 2
            ):
                found |= _string_constants(node.args[1])
            if isinstance(node, ast.FunctionDef) and node.name in ("check_reading", "check"):
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Tuple):
                        found |= _string_constants(ret.value.elts[0])
    return found


def test_the_reason_catalogue_names_every_dead_letter_reason_in_the_code() -> None:
    in_code = _reasons_in_code()
    assert {"not_avro", "missing_field", "future_timestamp", "invalid_feedback"} <= in_code
    assert in_code <= set(REASONS), sorted(in_code - set(REASONS))
