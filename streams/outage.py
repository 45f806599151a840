"""A dependency that can go away (the store, the broker): backoff and readable logs.

:class:`Outage` is the up/down state of one dependency the worker waits for instead of
dying: after a failure the next attempt waits ``initial`` seconds, doubling per failure up
to ``cap``; the log gets one WARNING line when the dependency becomes unreachable (with the
error) and one INFO line when it is back (how long it was down, how many retries), never a
line per retry. Pure: the clock and the logger are parameters.

>>> t = [0.0]
>>> store = Outage("the store", initial=0.5, cap=2.0, clock=lambda: t[0])
>>> store.failed(ConnectionError("refused")), store.ready(), store.delay
(True, False, 0.5)
>>> t[0] = 0.5; store.ready(), store.failed(ConnectionError("refused")), store.delay
(True, False, 1.0)
>>> store.failed(OSError()), store.failed(OSError()), store.delay  # capped
(False, False, 2.0)
>>> t[0] = 12.0; store.succeeded(), store.up, store.down_seconds
(True, True, 0.0)
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

__all__ = ["Outage"]

_log = logging.getLogger("envirostream.outage")
_DIGITS = re.compile(r"\d+")


class Outage:
    """Up/down state of one dependency, with capped exponential backoff between attempts."""

    def __init__(
        self,
        name: str,
        *,
        initial: float,
        cap: float,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger = _log,
        waiting: str = "retrying",
    ) -> None:
        if initial <= 0 or cap < initial:
            msg = f"backoff needs 0 < initial <= cap, got initial={initial}, cap={cap}"
            raise ValueError(msg)
        self.name = name
        self.initial = initial
        self.cap = cap
        self.clock = clock
        self.log = log
        self.waiting = waiting
        self.up = True
        self.failures = 0  # consecutive failed attempts of the current outage
        self.since = 0.0  # when the current outage began
        self.delay = 0.0  # the wait before the next attempt
        self._next = 0.0

    @property
    def retries(self) -> int:
        """Attempts made again after the first failure of the current outage."""
        return max(0, self.failures - 1)

    @property
    def down_seconds(self) -> float:
        return 0.0 if self.up else self.clock() - self.since

    def ready(self) -> bool:
        """True when an attempt may be made now (always while up)."""
        return self.up or self.clock() >= self._next

    def failed(self, error: BaseException) -> bool:
        """An attempt failed; True when this began an outage (the WARNING was logged)."""
        now = self.clock()
        began = self.up
        if began:
            self.up = False
            self.since = now
            self.failures = 0
        self.failures += 1
        self.delay = min(self.cap, self.initial * 2 ** (self.failures - 1))
        self._next = now + self.delay
        if began:
            self.log.warning(
                "%s is unreachable or refusing (%s: %s); %s with backoff up to %.0f s, nothing is "
                "committed past what it has not acknowledged",
                self.name,
                type(error).__name__,
                str(error).strip().splitlines()[0] if str(error).strip() else "no message",
                self.waiting,
                self.cap,
            )
        return began

    def succeeded(self) -> bool:
        """An attempt succeeded; True when this ended an outage (the INFO line was logged)."""
        if self.up:
            return False
        self.log.info(
            "%s is back after %.1f s and %d retries",
            self.name,
            self.clock() - self.since,
            self.retries,
        )
        self.up = True
        self.failures = 0
        self.delay = 0.0
        self._next = 0.0
        return True


class RepeatFilter(logging.Filter):
    """Lets a WARNING-or-worse message through once per ``interval`` seconds per logger and
    message template; the next one that passes says how many were held back.

    Kafka clients log a connection error per attempt (several a second while a broker is
    down); the worker's own :class:`Outage` lines tell when it went and came back.

    >>> f = RepeatFilter(interval=60.0, clock=lambda: 0.0)
    >>> rec = lambda: logging.LogRecord("aiokafka", logging.ERROR, "", 0, "down %s", ("b",), None)
    >>> [f.filter(rec()) for _ in range(3)]
    [True, False, False]
    >>> f.clock = lambda: 61.0; r = rec(); f.filter(r), r.getMessage()
    (True, 'down b (2 similar messages held back)')
    >>> late = logging.LogRecord("mode", logging.WARNING, "", 0, "took 2.01 s", (), None)
    >>> f.filter(late), f.filter(logging.makeLogRecord(late.__dict__ | {"msg": "took 2.4 s"}))
    (True, False)
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        # Numbers (ports, timings, counts) vary between repeats of one message.
        key = (record.name, record.levelno, _DIGITS.sub("#", str(record.msg)))
        now = self.clock()
        last = self._seen.get(key)
        if last is not None and now - last[0] < self.interval:
            self._seen[key] = (last[0], last[1] + 1)
            return False
        held = last[1] if last is not None else 0
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar messages held back)"
        return True


# Loggers of the Kafka clients (and of the worker's own periodic probes and timers) that
# repeat a line per attempt while a broker is away. A filter only sees the records of the
# logger it is on, so the modules' own loggers are named (created now if not yet imported),
# and every logger under these prefixes that exists already gets it too.
CHATTY_PREFIXES = ("aiokafka", "faust", "mode", "streams.health", "envirostream.kafka")
CHATTY_LOGGERS = (
    "aiokafka.conn",
    "aiokafka.client",
    "aiokafka.cluster",
    "aiokafka.consumer.fetcher",
    "aiokafka.consumer.group_coordinator",
    "aiokafka.consumer.consumer",
    "aiokafka.producer.sender",
    "aiokafka.producer.producer",
    "faust.transport.drivers.aiokafka",
    "mode.timers",
    "streams.health",
    "envirostream.kafka",
)


def quiet_client_logs(interval: float = 300.0) -> RepeatFilter:
    """Rate-limit the repeated warnings and errors of the Kafka clients' loggers (those that
    exist now and the named parents in :data:`CHATTY_LOGGERS`)."""
    repeat = RepeatFilter(interval)
    names = [n for n in logging.root.manager.loggerDict if n.startswith(CHATTY_PREFIXES)]
    for name in {*names, *CHATTY_LOGGERS}:
        logging.getLogger(name).addFilter(repeat)
    return repeat
