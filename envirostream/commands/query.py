"""``envirostream query "SQL"``: ClickHouse SQL against the configured store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from core.settings import Settings

__all__ = ["FORMATS", "add_parser", "run"]

FORMATS = ("PrettyCompact", "CSV", "CSVWithNames", "JSONEachRow", "TSV", "TabSeparatedWithNames")


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "query", help="run ClickHouse SQL against the configured store"
    )
    p.add_argument("sql")
    p.add_argument("--format", default="PrettyCompact", choices=list(FORMATS))
    p.add_argument(
        "--write",
        action="store_true",
        help="allow DDL and DML (the query is read-only, ClickHouse readonly=1, without it)",
    )
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from envirostream.query import run_query

    sys.stdout.write(run_query(settings, args.sql, args.format, write=args.write))
    return 0
