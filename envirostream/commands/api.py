"""``envirostream api``: serve the operator HTTP API (docs/api.md)."""

from __future__ import annotations

import argparse
from typing import Any

from core.settings import Settings

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "api",
        help="serve the operator HTTP API on ENVIROSTREAM_API_HOST:ENVIROSTREAM_API_PORT",
    )
    return p


def run(args: argparse.Namespace, settings: Settings) -> int:
    from api.server import api_url, serve
    from infra.store import start_store

    start_store(settings)  # the embedded store, unless it runs (a server URL: nothing)
    print(f"EnviroStream API on {api_url(settings)} (OpenAPI: {api_url(settings)}/docs)")
    serve(settings)
    return 0
