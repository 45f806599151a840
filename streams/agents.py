"""User agents: modules named in ``ENVIROSTREAM_WORKER_AGENTS`` that add Faust agents.

Each module defines ``register(app)``; the worker imports the modules at start (before
Faust runs, so a typo stops the process with a message naming the setting) and calls
``register`` with its Faust app, in which the module declares its ``@app.agent`` on e.g.
``telemetry.aggregates`` or ``telemetry.alerts`` (docs/extending.md).

>>> load_agents([])
[]
>>> try:
...     load_agents(["no_such_module_here"])
... except ConfigurationError as exc:
...     print(exc.setting, "|", str(exc).split(" (")[0])
ENVIROSTREAM_WORKER_AGENTS | ENVIROSTREAM_WORKER_AGENTS: cannot import module 'no_such_module_here'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from core.errors import ConfigurationError

__all__ = ["SETTING", "AgentRegistration", "load_agents"]

SETTING = "ENVIROSTREAM_WORKER_AGENTS"
AgentRegistration = Callable[[Any], None]  # register(app: faust.App) -> None


def load_agents(modules: Sequence[str]) -> list[AgentRegistration]:
    """Import ``modules`` and return their ``register`` functions, in order."""
    found: list[AgentRegistration] = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # any import failure is the configuration's to fix
            detail = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ImportError) else exc
            raise ConfigurationError(
                SETTING,
                f"cannot import module {name!r} ({detail}); name an importable module "
                "(on PYTHONPATH) or leave the setting empty",
            ) from exc
        register = getattr(module, "register", None)
        if not callable(register):
            raise ConfigurationError(
                SETTING,
                f"module {name!r} has no register(app) function; define one that declares "
                "its @app.agent(...) on the given Faust app",
            )
        found.append(register)
    return found
