"""``envirostream infra up|down|status``: the local services, without the pipeline."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "infra", help="start, stop or report the local services"
    )
    p.add_argument("action", choices=["up", "down", "status"])
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from infra.services import services_down, services_status, services_up

    report = {"up": services_up, "down": services_down, "status": services_status}[args.action]
    for line in report(settings):
        print(line)
    return 0
