"""The topics stored as they are (aggregates, anomalies, alerts): decode, dead-letter, rows.

A :class:`StoredTopic` names a topic, the Avro schema of its records, the table they go to
and the field holding their event time (for the event-to-sink latency). A
:class:`TopicIntake` is that path's state in one worker: it decodes a batch with the
topic's schema, turns the good records into rows for the sink (columns named by the sink)
and remembers, per input partition, the next offset to read. What does not decode is
returned as dead letters and its offset passed; offsets are committed only below the first
row the sink has not yet stored (the sink's ``pending_from``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.records import Source
from schemas import AvroCodec, DecodeError
from sinks.base import BatchingSink
from streams.records import DeadLetter, InputRecord
from topics import AGGREGATES, ALERTS, ANOMALIES

__all__ = ["STORED_TOPICS", "StoredTopic", "TopicIntake"]


@dataclass(frozen=True)
class StoredTopic:
    """Records of ``topic`` (schema ``schema``) stored as rows of ``table``."""

    topic: str
    schema: str
    table: str
    event_time: str  # field with the event time in epoch milliseconds (latency metric)


STORED_TOPICS: tuple[StoredTopic, ...] = (
    StoredTopic(AGGREGATES, "WindowAggregate", "aggregates", "window_end"),
    StoredTopic(ANOMALIES, "AnomalyScore", "anomalies", "ts"),
    StoredTopic(ALERTS, "Alert", "alerts", "last_seen"),
)


def to_columns(
    records: Sequence[Mapping[str, Any]], column_names: Sequence[str]
) -> list[list[Any]]:
    """The records column-wise, in ``column_names`` order (columns named as fields).

    >>> to_columns([{"a": 1, "b": 2}, {"a": 3, "b": 4}], ["b", "a"])
    [[2, 4], [1, 3]]
    """
    return [[r[name] for r in records] for name in column_names]


class TopicIntake:
    """One stored topic's records on their way into ``sink``, and the offsets read."""

    def __init__(self, stored: StoredTopic, codec: AvroCodec, sink: BatchingSink) -> None:
        self.stored = stored
        self.codec = codec
        self.sink = sink
        self.next_offset: dict[Source, int] = {}

    def take(
        self, batch: Sequence[InputRecord]
    ) -> tuple[list[DeadLetter], list[Mapping[str, Any] | None]]:
        """Decode ``batch`` (in offset order per partition) and buffer its rows in the sink.

        Returns the dead letters and the decoded records (``None`` where one did not decode),
        in batch order.
        """
        decoded = self.codec.decode_batch(self.stored.schema, [r.value or b"" for r in batch])
        bad: list[DeadLetter] = []
        records: list[Mapping[str, Any] | None] = []
        first: dict[Source, int] = {}
        good: list[Mapping[str, Any]] = []
        for rec, item in zip(batch, decoded, strict=True):
            self.next_offset[rec.source] = rec.offset + 1
            if isinstance(item, DecodeError):
                bad.append(DeadLetter(rec, item.reason, str(item), "sink"))
                records.append(None)
                continue
            records.append(item)
            first.setdefault(rec.source, rec.offset)
            good.append(item)
        if good:
            table = self.stored.table
            (source0, offset0), *others = first.items()
            self.sink.add(table, to_columns(good, self.sink.column_names(table)), source0, offset0)
            for source, offset in others:
                self.sink.hold(table, source, offset)
        return bad, records

    def forget(self, sources: Iterable[Source]) -> None:
        for source in sources:
            self.next_offset.pop(source, None)
