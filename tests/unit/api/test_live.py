"""The live alert stream's fan-out (api/live.py): per tenant, bounded, a slow reader dropped."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from api.live import AlertHub, Subscription, alert_json, sse_events


def record(tenant: str, device: str, version: int = 1, state: str = "FIRING") -> dict[str, Any]:
    return {
        "alert_id": f"{tenant}/{device}/device@1000",
        "alert_key": f"{tenant}/{device}/device",
        "tenant_id": tenant,
        "device_id": device,
        "device_type": "BATTERY_PACK",
        "capability": "CELL_TEMPERATURE",
        "rule": "safety_limit",
        "severity": "CRITICAL",
        "state": state,
        "first_seen": 1000,
        "last_seen": 2000,
        "resolved_at": 3000 if state == "RESOLVED" else None,
        "duplicates": 4,
        "summary": "cell temperature 65.0 above 60.0",
        "version": version,
        "attributes": {},
    }


def devices(sub: Subscription) -> list[str | None]:
    """The device ids queued for ``sub`` (``None``: the end marker), taken off the queue."""
    items = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    return [None if item is None else str(item["device_id"]) for item in items]


def test_alert_json_has_the_list_shape_and_no_tenant() -> None:
    item = alert_json(record("t1", "bat-1", version=3, state="RESOLVED"))
    assert set(item) == {
        "alert_id", "alert_key", "device_id", "device_type", "capability", "rule", "severity",
        "state", "first_seen_ms", "last_seen_ms", "resolved_at_ms", "duplicates", "summary",
        "version", "site", "attributes",
    }  # fmt: skip
    assert (item["resolved_at_ms"], item["version"], item["site"]) == (3000, 3, "unknown")


def test_each_stream_gets_only_its_tenants_alerts() -> None:
    hub = AlertHub(queue_size=8)
    a, b = hub.subscribe("tenant-a"), hub.subscribe("tenant-b")
    hub.publish([record("tenant-a", "d1"), record("tenant-b", "d2"), record("tenant-a", "d3")])
    assert devices(a) == ["d1", "d3"]
    assert devices(b) == ["d2"]


def test_a_slow_stream_is_dropped_without_touching_the_others() -> None:
    hub = AlertHub(queue_size=2)
    slow, fast = hub.subscribe("t"), hub.subscribe("t")
    hub.publish([record("t", "d1"), record("t", "d2")])
    assert devices(fast) == ["d1", "d2"]  # the fast reader keeps up
    hub.publish([record("t", "d3")])  # the slow one's queue is full: dropped
    assert slow.dropped and slow not in hub.subscriptions
    assert slow.queue.get_nowait() is None  # its end marker, nothing else
    assert devices(fast) == ["d3"]
    assert not fast.dropped and hub.dropped == 1


def test_queue_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="queue_size must be at least 1, got 0"):
        AlertHub(queue_size=0)


def test_the_event_text_waits_for_the_feed_then_sends_data_and_keepalives() -> None:
    async def run() -> list[str]:
        hub = AlertHub(queue_size=4)
        sub = hub.subscribe("t")
        events = sse_events(sub, hub.following, keepalive_seconds=0.05)
        chunks = [await anext(events), await anext(events)]  # connected, a keepalive
        hub.following.set()
        chunks.append(await anext(events))
        hub.publish([record("t", "d1", version=2)])
        chunks.append(await anext(events))
        chunks.append(await anext(events))  # nothing queued: a keepalive
        hub.close()
        chunks.append(await anext(events))
        with pytest.raises(StopAsyncIteration):
            await anext(events)
        return chunks

    chunks = asyncio.run(run())
    assert chunks[:3] == [": connected\n\n", ": keepalive\n\n", "event: following\ndata: {}\n\n"]
    assert chunks[3].startswith("data: ") and chunks[3].endswith("\n\n")
    assert json.loads(chunks[3][len("data: ") :])["version"] == 2
    assert chunks[4:] == [": keepalive\n\n", "event: dropped\ndata: {}\n\n"]


def test_streamed_alerts_carry_the_registry_site_of_their_device() -> None:
    hub = AlertHub(queue_size=4)
    sub = hub.subscribe("t")
    hub.publish([record("t", "d1"), record("t", "d2")], {("t", "d1"): "north-yard"})
    assert [i["site"] for i in (sub.queue.get_nowait() for _ in range(2)) if i] == [
        "north-yard",
        "unknown",
    ]
