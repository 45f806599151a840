"""``envirostream assets load FILE``: fill the asset registry (site, location, model, ...)."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from core.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "assets", help="load device metadata (site, location, model, tags) from CSV or YAML"
    )
    p.add_argument("action", choices=["load"])
    p.add_argument("file", type=Path, help="a .csv or .yaml file (format: docs/api.md)")
    p.add_argument("--tenant", default="default", help="tenant of entries that do not name one")
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api.assets import load_assets, write_assets
    from api.store import operator_client

    rows = load_assets(args.file, args.tenant)  # parsed before the store is touched
    count = write_assets(operator_client(settings), rows, dt.datetime.now(dt.UTC))
    print(f"loaded {count} device(s) from {args.file} into the asset registry")
    return 0
