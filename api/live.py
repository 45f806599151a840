"""The live alert stream: ``GET /api/v1/alerts/stream`` as Server-Sent Events.

One :class:`AlertFeed` per API process reads ``telemetry.alerts`` (an aiokafka consumer
without a group, assigned every partition from its current end) and hands each decoded
record to the :class:`AlertHub`, which fans it out to one bounded queue per connection of
the record's tenant. A browser that does not keep up is dropped (its queue is emptied and
its stream ends, the page reconnects and reloads the list); it never holds up the consumer
or the other browsers.

Each event is ``data: <alert json>`` in the shape of ``/api/v1/alerts`` items; a ``:
keepalive`` comment goes out when nothing happened for ``keepalive_seconds`` (proxies and
browsers keep the connection open).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from types import FrameType
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from api.auth import Principal, require
from core.settings import Settings
from schemas import AvroCodec, DecodeError
from schemas._registry import SchemaRegistryClient
from topics import ALERTS
from topics.kafka_config import aiokafka_kwargs

__all__ = [
    "AlertFeed",
    "AlertHub",
    "SiteLookup",
    "Subscription",
    "alert_json",
    "live_router",
    "streams_end_on_exit",
]

log = logging.getLogger(__name__)

QUEUE_SIZE = 256  # alerts buffered per connection before it counts as too slow
KEEPALIVE_SECONDS = 15.0
RETRY_SECONDS = 2.0  # between attempts while Kafka is not there
METADATA_SECONDS = 10  # how soon a topic created (or grown) after the start is followed


def alert_json(record: Mapping[str, Any], site: str | None = None) -> dict[str, Any]:
    """One decoded ``Alert`` record in the shape of the ``/api/v1/alerts`` items; ``site``
    from the asset registry when known, else the record's ``site`` attribute, else unknown.

    >>> r = {"alert_id": "t/d1/device@5", "alert_key": "t/d1/device", "tenant_id": "t",
    ...      "device_id": "d1", "device_type": "MACHINE", "capability": "VIBRATION",
    ...      "rule": "safety_limit", "severity": "CRITICAL", "state": "FIRING",
    ...      "first_seen": 5, "last_seen": 9, "resolved_at": None, "duplicates": 1,
    ...      "summary": "hot", "version": 2, "attributes": {"site": "north"}}
    >>> a = alert_json(r)
    >>> a["first_seen_ms"], a["last_seen_ms"], a["site"], "tenant_id" in a
    (5, 9, 'north', False)
    """
    attributes = {str(k): str(v) for k, v in (record.get("attributes") or {}).items()}
    resolved = record.get("resolved_at")
    return {
        "alert_id": str(record["alert_id"]),
        "alert_key": str(record["alert_key"]),
        "device_id": str(record["device_id"]),
        "device_type": str(record.get("device_type", "UNKNOWN")),
        "capability": str(record.get("capability", "UNKNOWN")),
        "rule": str(record["rule"]),
        "severity": str(record["severity"]),
        "state": str(record["state"]),
        "first_seen_ms": int(record["first_seen"]),
        "last_seen_ms": int(record["last_seen"]),
        "resolved_at_ms": None if resolved is None else int(resolved),
        "duplicates": int(record.get("duplicates", 0)),
        "summary": str(record.get("summary", "")),
        "version": int(record.get("version", 1)),
        "site": site or attributes.get("site") or "unknown",
        "attributes": attributes,
    }


class Subscription:
    """One open stream: the alerts of ``tenant_id`` waiting to be sent (``None``: closed)."""

    def __init__(self, tenant_id: str, size: int) -> None:
        self.tenant_id = tenant_id
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=size)
        self.dropped = False


class AlertHub:
    """Fans alerts out to the open streams of their tenant; drops a stream that lags."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        if queue_size < 1:
            msg = f"queue_size must be at least 1, got {queue_size}"
            raise ValueError(msg)
        self.queue_size = queue_size
        self.subscriptions: set[Subscription] = set()
        self.published = 0
        self.dropped = 0
        # Set while the feed reads every partition from its end: alerts from then on arrive.
        self.following = asyncio.Event()

    def subscribe(self, tenant_id: str) -> Subscription:
        sub = Subscription(tenant_id, self.queue_size)
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subscriptions.discard(sub)

    def tenants(self) -> set[str]:
        """The tenants with an open stream."""
        return {s.tenant_id for s in self.subscriptions}

    def publish(
        self, records: Iterable[Mapping[str, Any]], sites: Mapping[tuple[str, str], str] = {}
    ) -> None:
        """Queue each alert record for the streams of its tenant (never waits); ``sites``:
        the registry's site of ``(tenant, device)``."""
        for record in records:
            tenant = str(record.get("tenant_id", "default"))
            item = alert_json(record, sites.get((tenant, str(record["device_id"]))))
            self.published += 1
            for sub in [s for s in self.subscriptions if s.tenant_id == tenant]:
                try:
                    sub.queue.put_nowait(item)
                except asyncio.QueueFull:
                    self._drop(sub)

    def close(self) -> None:
        """End every open stream (the app is shutting down)."""
        for sub in list(self.subscriptions):
            self._drop(sub)

    def _drop(self, sub: Subscription) -> None:
        # Empty the queue so the end marker fits; the stream ends and the page reconnects.
        while not sub.queue.empty():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)
        sub.dropped = True
        self.dropped += 1
        self.subscriptions.discard(sub)


async def sse_events(
    sub: Subscription, following: asyncio.Event, keepalive_seconds: float = KEEPALIVE_SECONDS
) -> AsyncIterator[str]:
    """The text of one stream: an ``event: following`` once the feed reads the topic (the
    page shows "live" from then on), ``data:`` events, keepalive comments, an
    ``event: dropped`` when the connection could not keep up."""
    yield ": connected\n\n"
    while not following.is_set():
        try:
            await asyncio.wait_for(following.wait(), keepalive_seconds)
        except TimeoutError:
            yield ": keepalive\n\n"
    yield "event: following\ndata: {}\n\n"
    while True:
        try:
            item = await asyncio.wait_for(sub.queue.get(), keepalive_seconds)
        except TimeoutError:
            yield ": keepalive\n\n"
            continue
        if item is None:
            yield "event: dropped\ndata: {}\n\n"
            return
        yield f"data: {json.dumps(item, separators=(',', ':'))}\n\n"


SiteLookup = Callable[[str, str], str | None]  # (tenant, device) → registry site, or None


class AlertFeed:
    """The process's one consumer of ``telemetry.alerts``, publishing into ``hub``."""

    def __init__(self, settings: Settings, hub: AlertHub, sites: SiteLookup | None = None) -> None:
        self.settings = settings
        self.hub = hub
        self.sites = sites
        self.codec = AvroCodec(registry=SchemaRegistryClient.from_settings(settings))
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name="alert-feed")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.hub.close()

    async def _run(self) -> None:
        while True:
            # No group: every partition of the topic is assigned (new ones too, at the next
            # metadata refresh), read from its end; nothing is committed.
            consumer = AIOKafkaConsumer(
                ALERTS,
                **aiokafka_kwargs(self.settings),  # the settings' TLS/SASL too
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="latest",
                metadata_max_age_ms=METADATA_SECONDS * 1000,
            )
            try:
                await consumer.start()
                await self._follow(consumer)
            except (KafkaError, OSError) as exc:
                log.warning("live alerts: %s; retrying in %.0fs", exc, RETRY_SECONDS)
            finally:
                self.hub.following.clear()
                await consumer.stop()
            await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            if not self.hub.following.is_set() and consumer.assignment():
                for tp in consumer.assignment():  # the end offsets, resolved now
                    await consumer.position(tp)
                self.hub.following.set()
                log.info("live alerts: following %s", ALERTS)
            fetched = await consumer.getmany(timeout_ms=1000, max_records=1000)
            values = [m.value or b"" for msgs in fetched.values() for m in msgs]
            if not values:
                continue
            records = []
            for rec in self.codec.decode_batch("Alert", values):
                if isinstance(rec, DecodeError):
                    log.warning("live alerts: skipped an undecodable record: %s", rec)
                else:
                    records.append(rec)
            self.hub.publish(records, await self._sites(records))

    async def _sites(self, records: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
        """The registry sites of the records' devices (for tenants with an open stream),
        looked up in a thread: the lookup may read the store."""
        lookup = self.sites
        if lookup is None:
            return {}
        tenants = self.hub.tenants()
        wanted = {(str(r.get("tenant_id", "default")), str(r["device_id"])) for r in records}
        wanted = {k for k in wanted if k[0] in tenants}

        def find() -> dict[tuple[str, str], str]:
            return {k: site for k in wanted if (site := lookup(*k))}

        return await asyncio.to_thread(find) if wanted else {}


@contextlib.contextmanager
def streams_end_on_exit(hub: AlertHub) -> Iterator[None]:
    """End every open stream as soon as the server is told to stop (SIGINT/SIGTERM).

    uvicorn waits for open responses to finish before it shuts the app down, and a stream
    never finishes by itself: without this a stop would hang until killed. The handler
    chains to the one in place (uvicorn's), which is put back afterwards. Outside the main
    thread (signals cannot be caught there) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(hub.close)
        chained = previous[signal.Signals(signum)]
        if callable(chained):
            chained(signum, frame)
        elif chained == signal.SIG_DFL:  # what the signal would have done without us
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            if signal.getsignal(sig) is handler:
                signal.signal(sig, old)


def live_router(hub: AlertHub, keepalive_seconds: float = KEEPALIVE_SECONDS) -> APIRouter:
    """``GET /api/v1/alerts/stream`` over ``hub`` (read scope, the key's tenant only)."""
    router = APIRouter()

    @router.get(
        "/api/v1/alerts/stream",
        response_class=StreamingResponse,
        summary="Live alert state changes (Server-Sent Events) of the key's tenant",
    )
    async def alert_stream(
        principal: Annotated[Principal, Depends(require("read"))],
    ) -> StreamingResponse:
        sub = hub.subscribe(principal.tenant_id)

        async def body() -> AsyncIterator[str]:
            try:
                async for chunk in sse_events(sub, hub.following, keepalive_seconds):
                    yield chunk
            finally:
                hub.unsubscribe(sub)

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router
