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

from clickhouse_connect.driver.exceptions import OperationalError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from api import routes_alerts, routes_devices, routes_fleet
from api.context import ApiContext
from core.errors import ServiceUnavailableError
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
    app.add_exception_handler(ServiceUnavailableError, _store_unavailable)
    app.add_exception_handler(OperationalError, _store_unavailable)
    for module in (routes_fleet, routes_devices, routes_alerts):
        app.include_router(module.router)
    _register_extensions(app, settings)
    return app


async def _store_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """503 with the reason when the store does not answer (never a bare 500)."""
    if isinstance(exc, ServiceUnavailableError):
        detail = str(exc)
    else:  # the driver's text quotes the URL; say which setting points at the store instead
        detail = "the ClickHouse store stopped answering (ENVIROSTREAM_CLICKHOUSE_URL)"
    return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "5"})


def _register_extensions(app: FastAPI, settings: Settings) -> None:
    for name in EXTENSIONS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # a parent package is missing
            found = False
        if found:
            importlib.import_module(name).register(app, settings)
