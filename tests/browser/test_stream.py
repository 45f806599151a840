"""The live alert stream over plain HTTP, against the real API, worker, Kafka and store.

One hundred open streams of one tenant all get an alert the worker raised after they
connected (the one shared consumer fans out to every connection); a stream of another
tenant gets its own alert and never the first; no key, no stream.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from api.server import ApiProcess
from infra.processes import free_port
from tests.browser.stack import WebStack, cell_temperatures

pytestmark = pytest.mark.integration

STREAMS = 100
KEYS = 5  # connections are spread over keys: each key's rate limit allows a burst of 40


class Stream:
    """One raw HTTP/1.1 connection reading ``/api/v1/alerts/stream``."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.seen = b""

    @classmethod
    async def open(cls, url: str, key: str) -> Stream:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        writer.write(
            f"GET /api/v1/alerts/stream HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Bearer {key}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        return cls(reader, writer)

    async def until(self, needle: bytes, timeout: float) -> float:
        """Read until ``needle`` arrived; the monotonic time it did."""
        async with asyncio.timeout(timeout):
            while needle not in self.seen:
                chunk = await self.reader.read(65536)
                if not chunk:
                    msg = f"the stream ended before {needle!r}; got {self.seen[-500:]!r}"
                    raise AssertionError(msg)
                self.seen += chunk
        return time.monotonic()

    def close(self) -> None:
        self.writer.close()


def test_one_consumer_fans_alerts_out_to_every_stream_of_the_tenant_only(
    stack: WebStack,
) -> None:
    keys_a = [stack.key("fan-a", "read", f"fan-out {i}") for i in range(KEYS)]
    key_b = stack.key("fan-b", "read", "other tenant")

    async def run() -> tuple[list[float], Stream]:
        streams = [await Stream.open(stack.url, keys_a[i % KEYS]) for i in range(STREAMS)]
        other = await Stream.open(stack.url, key_b)
        try:
            for s in [*streams, other]:
                await s.until(b"event: following", 30)
            head = streams[0].seen.split(b"\r\n\r\n")[0].lower()
            assert head.startswith(b"http/1.1 200") and b"text/event-stream" in head, head
            produced = time.monotonic()
            await asyncio.to_thread(
                stack.produce, cell_temperatures("fan-a", "fan-bat-1", now_ms(), 5, 3)
            )
            arrived = await asyncio.gather(
                *(s.until(b'"device_id":"fan-bat-1"', 90) for s in streams)
            )
            await asyncio.to_thread(
                stack.produce, cell_temperatures("fan-b", "fan-bat-b", now_ms(), 5, 3)
            )
            await other.until(b'"device_id":"fan-bat-b"', 90)
            return [t - produced for t in arrived], other
        finally:
            for s in [*streams, other]:
                s.close()

    delays, other = asyncio.run(run())
    assert len(delays) == STREAMS
    assert b"fan-bat-1" not in other.seen and b'"alert_key":"fan-a/' not in other.seen
    print(
        f"one alert reached {STREAMS} open streams {statistics.median(delays):.2f}s (median) / "
        f"{max(delays):.2f}s (last) after its readings were produced"
    )


def test_the_stream_needs_a_key(stack: WebStack) -> None:
    request = urllib.request.Request(stack.url + "/api/v1/alerts/stream")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 401


def test_a_stop_ends_the_open_streams_instead_of_waiting_for_them(
    stack: WebStack, tmp_path: Path
) -> None:
    settings = stack.settings.model_copy(update={"api_port": free_port()})
    api = ApiProcess(settings, tmp_path / "api.log")
    api.wait_ready(60)
    key = stack.key("fan-a", "read", "stop test")

    async def run() -> float:
        stream = await Stream.open(api.url, key)
        try:
            await stream.until(b"event: following", 30)
            stopped = time.monotonic()
            await asyncio.to_thread(api.stop, 30.0)
            await stream.until(b"event: dropped", 5)  # the page then reconnects and reloads
            return time.monotonic() - stopped
        finally:
            stream.close()

    took = asyncio.run(run())
    assert took < 5, f"the API took {took:.1f}s to stop with a stream open"
    print(f"the API stopped {took:.2f}s after SIGTERM with a stream open")


def now_ms() -> int:
    return int(time.time() * 1000)
