"""``envirostream status [--watch]``: one-screen health from live metrics and the store."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "status", help="one-screen health summary from live metrics + store"
    )
    p.add_argument("--watch", action="store_true", help="redraw until Ctrl-C")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between redraws")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from envirostream.status import run_status

    return run_status(settings, watch=args.watch, interval=args.interval)
