"""The operator's web view, served by the API process: pages, their static files, the stream.

``register(app, settings)`` (called by ``api.app.create_app``) adds

* the pages ``/`` (alert board), ``/devices/{device_id}`` (a device's signals, anomalies and
  alert intervals) and ``/fleet`` (devices by state, silent devices, alerts by severity):
  plain HTML + JavaScript from ``static/``, no build step, nothing fetched from elsewhere;
* ``GET /api/v1/alerts/stream`` (:mod:`api.live`), whose Kafka consumer starts and stops
  with the app.

The pages hold no data: they ask for an API key (kept in the tab's ``sessionStorage``) and
call the JSON API with it in the ``Authorization`` header, so the key never appears in a
URL or an access log.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from api.context import ApiContext
from api.live import AlertFeed, AlertHub, SiteLookup, live_router, streams_end_on_exit
from core.settings import Settings
from sinks.asset_sites import AssetSites

__all__ = ["STATIC_DIR", "register"]

STATIC_DIR = Path(__file__).resolve().parent / "static"

# The pages load only their own files: no inline script, no CDN, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _page(name: str) -> Callable[..., Any]:
    path = STATIC_DIR / name

    async def page() -> FileResponse:
        return FileResponse(path, media_type="text/html", headers=PAGE_HEADERS)

    return page


def register(app: FastAPI, settings: Settings) -> None:
    """Add the pages, the static files and the live alert stream to ``app``."""
    hub = AlertHub()
    app.state.alert_hub = hub
    app.include_router(live_router(hub))
    app.add_api_route("/", _page("board.html"), include_in_schema=False)
    app.add_api_route("/fleet", _page("fleet.html"), include_in_schema=False)
    app.add_api_route("/devices/{device_id}", _page("device.html"), include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        feed = AlertFeed(settings, hub, _site_lookup(a))
        a.state.alert_feed = feed
        async with inner(a) as state:
            feed.start()
            try:
                with streams_end_on_exit(hub):
                    yield state
            finally:
                await feed.stop()

    app.router.lifespan_context = lifespan


def _site_lookup(app: FastAPI) -> SiteLookup | None:
    """The asset registry's site of a device (the registry re-read at most once a minute,
    through the API's store client), as the Alertmanager labels get it."""
    context: ApiContext | None = getattr(app.state, "api", None)
    return None if context is None else AssetSites(context.client).site
