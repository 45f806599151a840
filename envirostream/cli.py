"""The ``envirostream`` command line (stable: scripts and users depend on it).

The commands live in :mod:`envirostream.commands`, one module each; this module builds the
parser from their table, loads the settings and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from core.errors import ConfigurationError, EnviroStreamError
from core.settings import load_settings
from envirostream.commands import COMMANDS

__all__ = ["KNOWN_COMMANDS", "build_parser", "main"]

KNOWN_COMMANDS = tuple(COMMANDS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="envirostream",
        description="Sensor-fleet telemetry: Kafka → windows and detectors → ClickHouse.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        return COMMANDS[args.command].run(args, settings)
    except ConfigurationError as exc:
        print(f"envirostream: invalid configuration: {exc}", file=sys.stderr)
        return 2
    except EnviroStreamError as exc:
        print(f"envirostream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
