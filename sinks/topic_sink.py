"""One mechanism for every Kafka topic that is stored in a ClickHouse table.

A :class:`TopicSink` names a topic, the Avro schema of its records, the table they go to
and the column holding their event time. A :class:`TopicSinkBuffer` is its state in one
worker: the decoded records' rows (a :class:`~sinks.writer.RowBuffer`) and, per input
partition, the next offset to read. Offsets are safe to commit only below the first record
whose row is not yet stored (:meth:`TopicSinkBuffer.commit_offsets`), so the worker flushes
first and commits after.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.records import Source
from sinks.ddl import TABLES, TableDef
from sinks.writer import RowBuffer
from topics import AGGREGATES, ALERTS, ANOMALIES

__all__ = ["TOPIC_SINKS", "Source", "TopicSink", "TopicSinkBuffer"]


@dataclass(frozen=True)
class TopicSink:
    """Records of ``topic`` (schema ``schema``) stored as rows of ``table``."""

    topic: str
    schema: str
    table: TableDef
    event_time: str  # column with the event time in epoch milliseconds (latency metric)

    def rows(self, records: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
        """The records column-wise, in the table's insert order (columns named as fields)."""
        return [[r[name] for r in records] for name in self.table.column_names]

    @property
    def event_time_index(self) -> int:
        return self.table.column_names.index(self.event_time)


TOPIC_SINKS: tuple[TopicSink, ...] = (
    TopicSink(AGGREGATES, "WindowAggregate", TABLES["aggregates"], "window_end"),
    TopicSink(ANOMALIES, "AnomalyScore", TABLES["anomalies"], "ts"),
    TopicSink(ALERTS, "Alert", TABLES["alerts"], "last_seen"),
)


class TopicSinkBuffer:
    """The rows of one topic sink not yet stored, and the offsets they hold back."""

    def __init__(self, sink: TopicSink) -> None:
        self.sink = sink
        self.buffer = RowBuffer(sink.table)
        self.next_offset: dict[Source, int] = {}

    def add(
        self,
        positions: Sequence[tuple[Source, int]],
        records: Sequence[Mapping[str, Any] | None],
    ) -> None:
        """Records read at ``(source, offset)`` positions, in offset order per source.

        ``None`` marks a record that is not stored (dead-lettered): its offset is passed.
        """
        first: dict[Source, int] = {}
        good: list[Mapping[str, Any]] = []
        for (source, offset), record in zip(positions, records, strict=True):
            self.next_offset[source] = offset + 1
            if record is None:
                continue
            first.setdefault(source, offset)
            good.append(record)
        if not good:
            return
        (source0, offset0), *others = first.items()
        self.buffer.extend(self.sink.rows(good), source0, offset0)
        for source, offset in others:
            self.buffer.hold(source, offset)

    def commit_offsets(self) -> dict[Source, int]:
        """Per source, the offset up to which everything read is stored or dead-lettered."""
        out: dict[Source, int] = {}
        for source, nxt in self.next_offset.items():
            pending = self.buffer.pending_from.get(source)
            out[source] = nxt if pending is None else min(nxt, pending)
        return out

    def forget(self, sources: Iterable[Source]) -> None:
        for source in sources:
            self.next_offset.pop(source, None)
            self.buffer.pending_from.pop(source, None)
