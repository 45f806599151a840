"""The ``envirostream`` commands: one module per command, registered in one table.

Each command module has ``add_parser(subparsers)``, which adds its argparse parser, and
``run(args, settings)``, which runs it and returns the exit code. Adding a command is a new
module and one line in :data:`COMMANDS`; ``envirostream.cli`` builds the parser from the
table and dispatches on it.

>>> list(COMMANDS)[:3]
['up', 'worker', 'simulate']
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NamedTuple

from core.settings import Settings
from envirostream.commands import (
    alerts,
    api,
    assets,
    bench,
    dlq,
    gateway,
    infra,
    keys,
    query,
    replay,
    simulate,
    status,
    topics,
    up,
    worker,
)

__all__ = ["COMMANDS", "Command"]


class Command(NamedTuple):
    """How one command adds its parser and how it runs."""

    add_parser: Callable[[Any], argparse.ArgumentParser]
    run: Callable[[argparse.Namespace, Settings], int]


# In the order `envirostream --help` lists them.
COMMANDS: dict[str, Command] = {
    "up": Command(up.add_parser, up.run),
    "worker": Command(worker.add_parser, worker.run),
    "simulate": Command(simulate.add_parser, simulate.run),
    "replay": Command(replay.add_parser, replay.run),
    "gateway": Command(gateway.add_parser, gateway.run),
    "query": Command(query.add_parser, query.run),
    "infra": Command(infra.add_parser, infra.run),
    "topics": Command(topics.add_parser, topics.run),
    "status": Command(status.add_parser, status.run),
    "alerts": Command(alerts.add_parser, alerts.run),
    "dlq": Command(dlq.add_parser, dlq.run),
    "api": Command(api.add_parser, api.run),
    "keys": Command(keys.add_parser, keys.run),
    "assets": Command(assets.add_parser, assets.run),
    "bench": Command(bench.add_parser, bench.run),
}
