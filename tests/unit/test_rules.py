"""Alert rules: `promtool check rules` and `promtool test rules`, plus what promtool can't see.

Every rule carries a severity, a summary, a description and a runbook section that exists
in docs/runbook.md, and every metric a rule reads is one the code exports.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from core.metrics import PipelineMetrics
from topics.producer import ProducerMetrics

REPO = Path(__file__).resolve().parents[2]
RULES = sorted((REPO / "infra" / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((REPO / "infra" / "prometheus" / "tests").glob("*_test.yml"))
RUNBOOK = REPO / "docs" / "runbook.md"
# Series Prometheus itself makes; everything else must come from our code.
BUILTIN = {"up"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: run `make bootstrap` (installs Debian's prometheus)")
    return path


def _rules() -> list[dict[str, Any]]:
    return [r for f in RULES for g in yaml.safe_load(f.read_text())["groups"] for r in g["rules"]]


def exported_series() -> set[str]:
    names = set()
    producers = CollectorRegistry()
    ProducerMetrics(producers, "simulator")
    families = [*PipelineMetrics(CollectorRegistry()).registry.collect(), *producers.collect()]
    for family in families:
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


def test_rule_files_exist() -> None:
    assert RULES and RULE_TESTS


def test_promtool_check_rules() -> None:
    out = subprocess.run(
        [promtool(), "check", "rules", *map(str, RULES)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("test_file", RULE_TESTS, ids=lambda p: p.name)
def test_promtool_test_rules(test_file: Path) -> None:
    out = subprocess.run(
        [promtool(), "test", "rules", test_file.name],
        capture_output=True,
        text=True,
        cwd=test_file.parent,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_is_unit_tested() -> None:
    tested = set()
    for f in RULE_TESTS:
        for case in yaml.safe_load(f.read_text())["tests"]:
            tested |= {t["alertname"] for t in case.get("alert_rule_test", []) if t["exp_alerts"]}
    assert {r["alert"] for r in _rules()} == tested


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(up[5m]\n"
    )
    out = subprocess.run([promtool(), "check", "rules", str(bad)], capture_output=True, text=True)
    assert out.returncode != 0
    assert "parse error" in (out.stdout + out.stderr)


@pytest.mark.parametrize("rule", _rules(), ids=lambda r: r["alert"])
def test_rule_is_documented_and_reads_real_metrics(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"info", "warning", "critical"}
    assert rule["labels"]["component"] in {"pipeline", "fleet"}
    notes = rule["annotations"]
    assert notes["summary"] and notes["description"]
    anchor = f"docs/runbook.md#{rule['alert'].lower()}"
    assert notes["runbook"] == anchor
    assert f"## {rule['alert']}" in RUNBOOK.read_text(), f"no runbook section for {rule['alert']}"
    used = set(re.findall(r"\b(envirostream_[a-z_]+|up)\b", rule["expr"]))
    assert used - BUILTIN <= exported_series(), used - BUILTIN - exported_series()


def test_alertmanager_config_is_valid_and_inhibits_device_alerts_while_pipeline_down() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.fail("amtool not found: run `make bootstrap` (installs prometheus-alertmanager)")
    config = REPO / "infra" / "alertmanager" / "alertmanager.yml"
    out = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    inhibit = yaml.safe_load(config.read_text())["inhibit_rules"][0]
    assert "EnviroStreamWorkerDown" in inhibit["source_matchers"][0]
    assert "device" in inhibit["target_matchers"][0]
