"""The records the worker moves: an input record as fetched, and a dead letter.

>>> rec = InputRecord("telemetry.readings", 2, 41, b"d1", b"\\x00")
>>> rec.source
('telemetry.readings', 2)
>>> dict(DeadLetter(rec, "not_avro", "no Avro header", "decode").headers())["source.offset"]
b'41'
"""

from __future__ import annotations

from dataclasses import dataclass

from core.records import Source

__all__ = ["DeadLetter", "InputRecord", "Source"]


@dataclass(slots=True, init=False)
class InputRecord:
    """One record as fetched: where it came from and its bytes.

    Built once per fetched record, so its constructor is a plain one (a frozen dataclass's
    costs about three times as much) and ``source`` is computed once: the consumer passes
    one tuple shared by the records of a partition. Treat it as read-only.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    rekeyed: bool  # moved here by a worker from another partition (streams.routing)
    source: Source  # (topic, partition)

    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        rekeyed: bool = False,
        source: Source | None = None,
    ) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.rekeyed = rekeyed
        self.source = (topic, partition) if source is None else source


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record refused by the pipeline, with the original bytes and why."""

    record: InputRecord
    reason: str
    message: str
    stage: str

    def headers(self) -> list[tuple[str, bytes]]:
        r = self.record
        return [
            ("error.reason", self.reason.encode()),
            ("error.message", self.message.encode()),
            ("error.stage", self.stage.encode()),
            ("source.topic", r.topic.encode()),
            ("source.partition", str(r.partition).encode()),
            ("source.offset", str(r.offset).encode()),
        ]
