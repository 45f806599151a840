"""Dead letters read back from ``telemetry.dlq``: filtered, summarised, re-injected.

The worker dead-letters a refused record with its original key and bytes and headers
naming the error and origin (``error.reason``, ``error.message``, ``error.stage``,
``source.topic``, ``source.partition``, ``source.offset``). This module reads them back
(:func:`read_dead_letters`, a snapshot of the topic from its start to the end it had when
the read began), selects some (:class:`LetterFilter`), counts them (:class:`DlqSummary`) and
sends them again to their source topic (:func:`replay`). The reader is stateless: it
assigns partitions itself and never commits, so every ``dlq list`` or ``dlq replay`` sees
the whole retained topic; re-sending a reading twice is harmless because the readings
table keys on ``reading_id``.

Decoding a value (to name its device) is injected as a function: this floor does not
import the codec.

>>> letter = DeadLetterRecord.from_message(
...     partition=0, offset=7, timestamp_ms=1_700_000_000_000, key=b"d1", value=b"\\x00",
...     headers=[("error.reason", b"late"), ("source.topic", b"telemetry.readings"),
...              ("source.partition", b"2"), ("source.offset", b"41")])
>>> letter.reason, letter.source_topic, letter.source_partition, letter.source_offset
('late', 'telemetry.readings', 2, 41)
>>> LetterFilter(reasons=frozenset({"late"}), since_ms=1_700_000_000_000).matches(letter)
True
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from core.errors import EnviroStreamError
from topics.definitions import DLQ
from topics.kafka_config import KafkaTarget, kafka_address, librdkafka_config
from topics.producer import RecordProducer

__all__ = [
    "NO_REASON",
    "NO_TOPIC",
    "UNDECODABLE",
    "DeadLetterReadError",
    "DeadLetterRecord",
    "DlqSummary",
    "LetterFilter",
    "ReplayReport",
    "parse_since",
    "read_dead_letters",
    "replay",
    "summarise",
]

UNDECODABLE = "(undecodable)"  # the device of a value that does not decode
NO_REASON = "(no reason header)"
NO_TOPIC = "(no source.topic header)"
REPLAY_HEADER = "envirostream.replayed_from"  # "telemetry.dlq:<partition>:<offset>"

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class DeadLetterReadError(EnviroStreamError):
    """The dead-letter topic could not be read to its end."""


def parse_since(text: str, now: dt.datetime) -> int:
    """``--since`` as milliseconds since the epoch: an ISO time or a span back from ``now``.

    A span is a number and a unit (s, m, h, d, w). An ISO time without a zone is UTC.

    >>> now = dt.datetime(2026, 1, 2, 12, 0, tzinfo=dt.UTC)
    >>> parse_since("2h", now) == dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC).timestamp() * 1000
    True
    >>> parse_since("2026-01-02T11:30:00Z", now) - parse_since("90m", now)
    3600000
    >>> parse_since("yesterday", now)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    core.errors.EnviroStreamError: --since 'yesterday': expected an ISO time (...) or a span...
    """
    if not isinstance(now.tzinfo, dt.tzinfo):
        msg = "parse_since needs a timezone-aware now"
        raise ValueError(msg)
    m = _RELATIVE.match(text)
    if m:
        when = now - dt.timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
    else:
        try:
            when = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            msg = (
                f"--since {text!r}: expected an ISO time (2026-01-02T08:00:00Z) or a span back "
                "from now such as 30m, 2h, 7d"
            )
            raise EnviroStreamError(msg) from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


Headers = Sequence[tuple[str, str | bytes | None]]


def _header_text(headers: Headers, name: str) -> str | None:
    for key, value in headers:
        if key == name and value is not None:
            return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    return None


def _header_int(headers: Headers, name: str) -> int | None:
    text = _header_text(headers, name)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    """One record of the dead-letter topic: where it is, when it was refused, what and why."""

    partition: int  # of the DLQ
    offset: int  # in the DLQ
    timestamp_ms: int  # when it was dead-lettered (the DLQ record's timestamp)
    key: bytes | None
    value: bytes | None
    reason: str
    message: str
    stage: str
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None

    @classmethod
    def from_message(
        cls,
        *,
        partition: int,
        offset: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
    ) -> DeadLetterRecord:
        return cls(
            partition=partition,
            offset=offset,
            timestamp_ms=timestamp_ms,
            key=key,
            value=value,
            reason=_header_text(headers, "error.reason") or NO_REASON,
            message=_header_text(headers, "error.message") or "",
            stage=_header_text(headers, "error.stage") or "",
            source_topic=_header_text(headers, "source.topic") or None,
            source_partition=_header_int(headers, "source.partition"),
            source_offset=_header_int(headers, "source.offset"),
        )


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters a command acts on: any of ``reasons`` (all when empty), refused at
    or after ``since_ms`` (all when None)."""

    reasons: frozenset[str] = frozenset()
    since_ms: int | None = None

    def matches(self, letter: DeadLetterRecord) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        return self.since_ms is None or letter.timestamp_ms >= self.since_ms


# -- reading ----------------------------------------------------------------------------------
def read_dead_letters(
    kafka: KafkaTarget,
    *,
    topic: str = DLQ,
    since_ms: int | None = None,
    stall_timeout: float = 30.0,
) -> Iterator[DeadLetterRecord]:
    """The records of ``topic`` up to the end each partition had when the read started.

    Records written to the topic meanwhile (a replay's records refused again) are not read,
    so a replay never loops. With ``since_ms`` each partition starts at the first record
    stamped at or after it (the broker's time index); callers still filter, as record
    timestamps need not grow with offsets. A missing topic reads as empty. Raises
    :class:`DeadLetterReadError` when no record arrives for ``stall_timeout`` seconds
    before the snapshot's end.
    """
    consumer = Consumer(
        {
            **librdkafka_config(kafka),
            "group.id": "envirostream-dlq-reader",  # assigns partitions; never commits
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=stall_timeout)
        tmeta = meta.topics.get(topic)
        if tmeta is None or tmeta.error is not None:
            return
        starts: dict[int, int] = {}
        ends: dict[int, int] = {}
        for p in sorted(tmeta.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, p), timeout=stall_timeout, cached=False
            )
            starts[p], ends[p] = low, high
        if since_ms is not None:
            wanted = [TopicPartition(topic, p, since_ms) for p in starts]
            for tp in consumer.offsets_for_times(wanted, timeout=stall_timeout):
                # -1: no record at or after since_ms in this partition.
                starts[tp.partition] = ends[tp.partition] if tp.offset < 0 else tp.offset
        todo = {p for p in starts if ends[p] > starts[p]}
        if not todo:
            return
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in sorted(todo)])
        last_progress = time.monotonic()
        while todo:
            messages = consumer.consume(num_messages=5_000, timeout=0.5)
            if not messages and time.monotonic() - last_progress > stall_timeout:
                left = ", ".join(f"{p}@{ends[p]}" for p in sorted(todo))
                msg = (
                    f"reading {topic}: nothing arrived for {stall_timeout:.0f}s before the end "
                    f"of partitions {left}; is the broker at {kafka_address(kafka)} up?"
                )
                raise DeadLetterReadError(msg)
            for m in messages:
                if m.error() is not None:
                    raise KafkaException(m.error())
                p, off = m.partition(), m.offset()
                if p is None or off is None or p not in todo:
                    continue
                last_progress = time.monotonic()
                if off < ends[p]:
                    yield DeadLetterRecord.from_message(
                        partition=p,
                        offset=off,
                        timestamp_ms=m.timestamp()[1],
                        key=m.key(),
                        value=m.value(),
                        headers=_header_list(m.headers()),
                    )
                if off >= ends[p] - 1:
                    todo.discard(p)
    finally:
        consumer.close()


def _header_list(headers: Any) -> Headers:
    # confluent-kafka gives a list of pairs (or a dict, in some builds) or None.
    if not headers:
        return []
    return list(headers.items()) if isinstance(headers, dict) else list(headers)


# -- summarising ------------------------------------------------------------------------------
DeviceOf = Callable[[DeadLetterRecord], str | None]


@dataclass
class DlqSummary:
    """Counts of dead letters by reason, device, source topic; the oldest and newest."""

    total: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    by_device: Counter[str] = field(default_factory=Counter)
    by_topic: Counter[str] = field(default_factory=Counter)
    oldest_ms: int | None = None
    newest_ms: int | None = None

    def add(self, letter: DeadLetterRecord, device: str | None) -> None:
        self.total += 1
        self.by_reason[letter.reason] += 1
        self.by_device[device if device is not None else UNDECODABLE] += 1
        self.by_topic[letter.source_topic or NO_TOPIC] += 1
        ts = letter.timestamp_ms
        self.oldest_ms = ts if self.oldest_ms is None else min(self.oldest_ms, ts)
        self.newest_ms = ts if self.newest_ms is None else max(self.newest_ms, ts)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; counts sorted largest first, times as ISO UTC."""

        def ranked(c: Counter[str]) -> dict[str, int]:
            return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

        return {
            "total": self.total,
            "by_reason": ranked(self.by_reason),
            "by_device": ranked(self.by_device),
            "by_source_topic": ranked(self.by_topic),
            "oldest": _iso(self.oldest_ms),
            "newest": _iso(self.newest_ms),
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2)

    def to_table(self, top_devices: int = 20) -> str:
        """Human-readable: one block per dimension, at most ``top_devices`` devices."""
        if self.total == 0:
            return "no dead letters match\n"
        d = self.as_dict()
        lines = [
            f"dead letters: {self.total}   oldest: {d['oldest']}   newest: {d['newest']}",
        ]
        devices = list(d["by_device"].items())
        blocks: list[tuple[str, list[tuple[str, int]]]] = [
            ("reason", list(d["by_reason"].items())),
            ("source topic", list(d["by_source_topic"].items())),
            ("device", devices[:top_devices]),
        ]
        for title, rows in blocks:
            width = max([len(title), *(len(k) for k, _ in rows)])
            lines += ["", f"{title:<{width}}  {'count':>8}"]
            lines += [f"{k:<{width}}  {n:>8}" for k, n in rows]
        if len(devices) > top_devices:
            rest = sum(n for _, n in devices[top_devices:])
            lines.append(f"... {len(devices) - top_devices} more devices, {rest} letters")
        return "\n".join(lines) + "\n"


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat(timespec="milliseconds")


def summarise(
    letters: Iterable[DeadLetterRecord], where: LetterFilter, device_of: DeviceOf
) -> DlqSummary:
    """Count the letters ``where`` selects; ``device_of`` names a letter's device (None: its
    value does not decode).

    >>> a = DeadLetterRecord(0, 0, 1_000, b"d1", b"x", "late", "", "window",
    ...                      "telemetry.readings", 0, 5)
    >>> b = DeadLetterRecord(0, 1, 3_000, None, b"?", "not_avro", "", "decode",
    ...                      "telemetry.readings", 1, 9)
    >>> s = summarise([a, b], LetterFilter(), lambda l: "d1" if l.value == b"x" else None)
    >>> dict(s.by_reason), dict(s.by_device), s.oldest_ms, s.newest_ms
    ({'late': 1, 'not_avro': 1}, {'d1': 1, '(undecodable)': 1}, 1000, 3000)
    """
    summary = DlqSummary()
    for letter in letters:
        if where.matches(letter):
            summary.add(letter, device_of(letter))
    return summary


# -- replaying --------------------------------------------------------------------------------
@dataclass
class ReplayReport:
    """What a replay sent (or, dry, would send) per reason, and what it could not send."""

    dry_run: bool
    sent: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)  # "reason: why" -> count
    undelivered: int = 0

    @property
    def total_sent(self) -> int:
        return sum(self.sent.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "sent": dict(sorted(self.sent.items())),
            "total_sent": self.total_sent,
            "skipped": dict(sorted(self.skipped.items())),
            "undelivered": self.undelivered,
        }

    def to_table(self) -> str:
        verb = "would send" if self.dry_run else "sent"
        if not self.sent and not self.skipped:
            return "no dead letters match\n"
        width = max([6, *(len(k) for k in self.sent), *(len(k) for k in self.skipped)])
        lines = [f"{'reason':<{width}}  {verb:>10}"]
        lines += [f"{k:<{width}}  {n:>10}" for k, n in sorted(self.sent.items())]
        lines.append(f"{'total':<{width}}  {self.total_sent:>10}")
        for k, n in sorted(self.skipped.items()):
            lines.append(f"skipped {n}: {k}")
        if self.undelivered:
            lines.append(f"NOT DELIVERED: {self.undelivered} (the broker did not acknowledge)")
        return "\n".join(lines) + "\n"


def replay(
    letters: Iterable[DeadLetterRecord],
    where: LetterFilter,
    producer: RecordProducer | None,
    existing_topics: set[str],
    *,
    batch: int = 5_000,
    flush_timeout: float = 60.0,
) -> ReplayReport:
    """Send the letters ``where`` selects to their source topic: original key and bytes, a
    header naming the dead letter, the key choosing the partition (as the first time).

    ``producer`` None is a dry run. A letter without a ``source.topic`` header, or whose
    source topic does not exist in ``existing_topics``, is skipped and counted (never sent
    to a topic the broker would auto-create). Waits for the broker's acknowledgements;
    ``undelivered`` counts what it did not acknowledge.
    """
    report = ReplayReport(dry_run=producer is None)
    pending: dict[str, list[DeadLetterRecord]] = {}
    queued = 0

    def send() -> None:
        assert producer is not None
        for topic, group in pending.items():
            producer.send_batch(
                topic,
                [letter.key for letter in group],
                [letter.value for letter in group],
                headers=[
                    [(REPLAY_HEADER, f"{DLQ}:{letter.partition}:{letter.offset}".encode())]
                    for letter in group
                ],
            )
        pending.clear()

    for letter in letters:
        if not where.matches(letter):
            continue
        topic = letter.source_topic
        if topic is None:
            report.skipped[f"{letter.reason}: no source.topic header"] += 1
            continue
        if topic not in existing_topics:
            report.skipped[f"{letter.reason}: source topic {topic} does not exist"] += 1
            continue
        report.sent[letter.reason] += 1
        if producer is None:
            continue
        pending.setdefault(topic, []).append(letter)
        queued += 1
        if queued >= batch:
            send()
            queued = 0
    if producer is not None:
        send()
        report.undelivered = producer.flush(flush_timeout)
    return report
