"""``envirostream up``: services, worker and a simulated fleet, with a live summary."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings
from envirostream.commands._simulation import add_simulation_args, simulation_config

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "up", help="start services, worker and a simulated fleet; live summary"
    )
    add_simulation_args(p)
    p.add_argument(
        "--for",
        dest="run_for",
        type=float,
        default=None,
        help="stop after this many wall seconds (default: until Ctrl-C)",
    )
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from envirostream.demo import run_up

    return run_up(settings, simulation_config(args), run_for=args.run_for)
