"""``envirostream worker``: run the stream worker (scale by running more)."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "worker", help="run the stream worker (scale by running more)"
    )
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from streams.run import run_worker

    run_worker(settings)
    return 0
