"""The Grafana dashboard: valid JSON, provisioned by docker-compose, and every query names
a metric the code exports or a ClickHouse table the sinks create (checked able to fail)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from sinks.ddl import TABLES
from tests.unit.test_rules import BUILTIN, exported_series, promtool

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "infra" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def datasource_uids() -> dict[str, str]:
    config = yaml.safe_load((GRAFANA / "provisioning/datasources/envirostream.yml").read_text())
    return {d["uid"]: d["type"] for d in config["datasources"]}


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out += [panel, *panel.get("panels", [])]
    return [p for p in out if p["type"] != "row"]


def problems(dashboard: dict[str, Any]) -> list[str]:
    found = []
    uids = datasource_uids()
    metrics = exported_series() | BUILTIN
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            where = f"panel {panel['title']!r} {target['refId']}"
            uid = target["datasource"]["uid"]
            if uids.get(uid) != target["datasource"]["type"]:
                found.append(f"{where}: data source {uid!r} is not provisioned")
            if "expr" in target:
                for name in re.findall(r"\b(envirostream_[a-z_]+|up)\b", target["expr"]):
                    if name not in metrics:
                        found.append(f"{where}: metric {name} is not exported")
            if "rawSql" in target:
                for table in re.findall(r"\bFROM\s+([A-Za-z_][A-Za-z0-9_]*)", target["rawSql"]):
                    if table not in TABLES:
                        found.append(f"{where}: table {table} does not exist (sinks/ddl.py)")
    return found


def test_dashboards_are_valid_and_name_real_metrics_and_tables() -> None:
    assert DASHBOARDS
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["title"]
        assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
        assert problems(dashboard) == []
        queries = [t for p in _panels(dashboard) for t in p.get("targets", [])]
        assert any("expr" in t for t in queries) and any("rawSql" in t for t in queries)


def test_provisioned_by_compose() -> None:
    grafana = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"] if v.startswith(".")}
    assert mounts["/etc/grafana/provisioning"] == "./infra/grafana/provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/envirostream.yml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    assert (REPO / mounts[folder]).resolve() == (GRAFANA / "dashboards").resolve()
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]


def test_unknown_metric_table_or_datasource_is_reported() -> None:
    dashboard = json.loads(DASHBOARDS[0].read_text())
    targets = [t for p in _panels(dashboard) for t in p.get("targets", [])]
    prom = next(t for t in targets if "expr" in t)
    sql = next(t for t in targets if "rawSql" in t)
    prom["expr"] = "rate(envirostream_readings_eaten_total[1m])"
    sql["rawSql"] = "SELECT 1 FROM readingz"
    sql["datasource"]["uid"] = "clickhousez"
    found = "\n".join(problems(dashboard))
    assert "envirostream_readings_eaten_total is not exported" in found
    assert "table readingz does not exist" in found
    assert "'clickhousez' is not provisioned" in found


def test_promql_of_every_panel_parses(tmp_path: Path) -> None:
    """promtool parses each query (as a recording rule): a typo fails here, not in Grafana."""
    exprs = [
        t["expr"]
        for path in DASHBOARDS
        for p in _panels(json.loads(path.read_text()))
        for t in p.get("targets", [])
        if "expr" in t
    ]
    rules = [{"record": f"dashboard:query{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
