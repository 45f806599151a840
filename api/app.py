"""The FastAPI application of the operator API: ``create_app(settings)``.

Routes: ``api.routes_fleet`` (health, fleet), ``api.routes_devices``, ``api.routes_alerts``.
Extensions (the web view, ``api.web``) add their routes through ``register(app, settings)``
when their module is installed; OpenAPI is served at ``/docs``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import routes_alerts, routes_devices, routes_fleet
from api.context import ApiContext
from core.settings import Settings

__all__ = ["EXTENSIONS", "create_app"]

# Modules whose ``register(app, settings)`` adds routes, when the module exists.
EXTENSIONS: tuple[str, ...] = ("api.web",)


def create_app(settings: Settings) -> FastAPI:
    """The API application on ``settings``' store (state: ``app.state.api``)."""
    context = ApiContext(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        context.close()

    app = FastAPI(
        title="EnviroStream operator API",
        version="1",
        description="Devices, series, anomalies and alerts of one tenant per API key "
        "(`Authorization: Bearer <key>`); see docs/api.md.",
        docs_url="/docs",
        lifespan=lifespan,
    )
    app.state.api = context
    for module in (routes_fleet, routes_devices, routes_alerts):
        app.include_router(module.router)
    _register_extensions(app, settings)
    return app


def _register_extensions(app: FastAPI, settings: Settings) -> None:
    for name in EXTENSIONS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if found:
            importlib.import_module(name).register(app, settings)
