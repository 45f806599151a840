"""A local Prometheus and Alertmanager (Debian's binaries) with their own configs and ports.

Used by integration tests and by hand: each instance lives in its own folder (config, data,
pid, log), listens on loopback ports chosen by the caller and never touches a system
service the Debian packages may have installed. ``fast_rules`` rewrites the project's rule
files to second-scale ``for:`` and range windows, so rules can fire within a test.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from core.errors import ServiceUnavailableError
from infra.processes import ServiceProcess, start_service, stop_service

__all__ = [
    "RULES_DIR",
    "LocalService",
    "fast_rules",
    "get_json",
    "prometheus_alerts",
    "start_alertmanager",
    "start_prometheus",
    "stop_local",
]

RULES_DIR = Path(__file__).resolve().parent / "prometheus" / "rules"


@dataclass(frozen=True)
class LocalService:
    """One running local Prometheus or Alertmanager."""

    service: ServiceProcess
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def fast_rules(text: str, for_: str = "5s", window: str = "10s") -> str:
    """The rule file ``text`` with every ``for:`` set to ``for_`` and every range ``[…]`` to
    ``window`` (offsets too), for tests that must see a rule fire within seconds.

    >>> fast_rules("expr: rate(x[5m]) > 0\\nfor: 10m\\n")
    'expr: rate(x[10s]) > 0\\nfor: 5s\\n'
    """
    text = re.sub(r"\[(\d+[smhd])\]", f"[{window}]", text)
    text = re.sub(r"offset \d+[smhd]", f"offset {window}", text)
    return re.sub(r"for: \d+[smhd]", f"for: {for_}", text)


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        msg = f"{name} not found on PATH: run `make bootstrap` (installs Debian's {name})"
        raise ServiceUnavailableError(name, "-", msg)
    return path


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def start_prometheus(
    home: Path,
    port: int,
    targets: Mapping[str, Sequence[str]],
    rule_files: Sequence[Path] = (),
    alertmanager_port: int | None = None,
    interval: str = "1s",
) -> LocalService:
    """Prometheus scraping ``targets`` (job → ["host:port"]) every ``interval``."""
    home.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(p) for p in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(addrs)}]}
            for job, addrs in targets.items()
        ],
    }
    if alertmanager_port is not None:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
        }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    svc = LocalService(ServiceProcess("prometheus", home), port)
    argv = [
        _binary("prometheus"),
        f"--config.file={home / 'prometheus.yml'}",
        f"--storage.tsdb.path={home / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-lifecycle",
    ]
    start_service(svc.service, argv, lambda: _ready(svc.url), svc.url, timeout=30)
    return svc


def start_alertmanager(home: Path, port: int, config: Path) -> LocalService:
    """Alertmanager with ``config``, clustering off (no gossip port to collide on)."""
    home.mkdir(parents=True, exist_ok=True)
    svc = LocalService(ServiceProcess("alertmanager", home), port)
    argv = [
        _binary("prometheus-alertmanager"),
        f"--config.file={config}",
        f"--storage.path={home / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
    start_service(svc.service, argv, lambda: _ready(svc.url), svc.url, timeout=30)
    return svc


def stop_local(svc: LocalService) -> bool:
    return stop_service(svc.service)


def get_json(url: str, path: str, **params: str) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(url + path + query, timeout=5) as resp:
        return json.load(resp)


def prometheus_alerts(url: str) -> dict[str, str]:
    """``{alertname: state}`` of Prometheus's active alerts (``pending`` or ``firing``)."""
    body = get_json(url, "/api/v1/alerts")
    return {a["labels"]["alertname"]: a["state"] for a in body["data"]["alerts"]}
