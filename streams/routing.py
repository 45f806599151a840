"""Readings on the wrong partition: found, re-keyed to their device's partition, counted once.

A device's readings must be windowed, scored and alerted by one worker: the owner of the
``telemetry.readings`` partition that Kafka's murmur2 partitioner gives its ``device_id``
(the pipeline's own producers, the Java client, aiokafka and Faust all agree on it; see
docs/devices.md). A vendor's client may not: librdkafka's default partitioner (CRC32) puts
a device elsewhere, and null-keyed readings are spread over every partition.

:class:`DeviceRouter` says which partition owns a device (murmur2, cached per device), and
:func:`split_misrouted` takes the readings of a batch that sit on another partition out of
it. The worker produces those back to ``telemetry.readings``, keyed by their device and on
its partition, with the :data:`REKEYED_HEADER` naming where they came from; it commits the
source offset only after the broker acknowledged them (as for every output), so nothing is
lost. A SIGKILL between that acknowledgement and the commit re-sends them:
:class:`RekeyedSeen` remembers the reading ids of re-keyed readings in each open window, so
a second copy is not counted twice (a copy arriving after its window closed is late, and the
window is recomputed from the stored readings, which are deduplicated by reading id).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.partitioner import murmur2

from core.records import Source
from streams.records import InputRecord

__all__ = [
    "REKEYED_HEADER",
    "DeviceRouter",
    "Rekeyed",
    "RekeyedSeen",
    "is_rekeyed",
    "murmur2_partition",
    "split_misrouted",
]

# Header of a reading the worker moved to its device's partition: ``topic/partition/offset``
# of the record it was read from.
REKEYED_HEADER = "envirostream.rekeyed-from"
_REKEYED = REKEYED_HEADER
_CACHE_LIMIT = 1_000_000  # devices remembered before the cache starts over


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (Java) partitioner gives ``key``.

    >>> [murmur2_partition(f"dev-{i}".encode(), 4) for i in range(6)]
    [2, 1, 0, 3, 1, 0]
    """
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def is_rekeyed(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    """True when ``headers`` mark a record the worker re-keyed."""
    return bool(headers) and any(k == _REKEYED for k, _ in headers or ())


@dataclass(frozen=True, slots=True)
class Rekeyed:
    """A reading to move: the record as read, its device and the partition that owns it."""

    record: InputRecord
    device_id: str
    partition: int

    def headers(self) -> list[tuple[str, bytes]]:
        r = self.record
        return [(REKEYED_HEADER, f"{r.topic}/{r.partition}/{r.offset}".encode())]


class DeviceRouter:
    """Which ``telemetry.readings`` partition owns a device; 0 partitions = not known yet
    (every reading is then handled where it is)."""

    def __init__(self, partitions: int = 0) -> None:
        self.partitions = partitions
        self._owner: dict[str, int] = {}

    def set_partitions(self, partitions: int) -> None:
        if partitions != self.partitions:
            self.partitions = partitions
            self._owner.clear()

    def owner(self, device_id: str) -> int:
        found = self._owner.get(device_id)
        if found is None:
            if len(self._owner) >= _CACHE_LIMIT:
                self._owner.clear()
            found = self._owner[device_id] = murmur2_partition(device_id.encode(), self.partitions)
        return found


def split_misrouted(
    router: DeviceRouter,
    batch: Sequence[InputRecord],
    device_ids: Sequence[str],
    keep: list[int],
) -> tuple[list[int], list[Rekeyed]]:
    """The readings ``keep`` (indices into ``batch`` and its ``device_ids``) that belong
    here, and those to move to their owner.

    A reading that was already re-keyed stays wherever it is (never moved twice: two
    workers that briefly disagree on the partition count cannot bounce it).
    """
    if not router.partitions:
        return keep, []
    owner = router.owner
    if all([owner(device_ids[i]) == batch[i].partition for i in keep]):
        return keep, []  # the usual batch: well keyed
    here: list[int] = []
    moved: list[Rekeyed] = []
    for i in keep:
        rec = batch[i]
        part = owner(device_ids[i])
        if part == rec.partition or rec.rekeyed:
            here.append(i)
        else:
            moved.append(Rekeyed(rec, device_ids[i], part))
    return here, moved


class RekeyedSeen:
    """Reading ids of re-keyed readings per open window, per input partition."""

    def __init__(self, window_ms: int) -> None:
        self.window_ms = window_ms
        self._ids: dict[Source, dict[tuple[str, str, int], set[str]]] = {}

    def counted(self, src: Source, item: dict[str, Any]) -> bool:
        """True when this re-keyed reading is already in its open window."""
        ids = self._ids.get(src, {}).get(self._key(item))
        return ids is not None and item["reading_id"] in ids

    def remember(self, src: Source, item: dict[str, Any]) -> None:
        """A re-keyed reading went into its window."""
        self._ids.setdefault(src, {}).setdefault(self._key(item), set()).add(item["reading_id"])

    def _key(self, item: dict[str, Any]) -> tuple[str, str, int]:
        ts = item["timestamp"]
        return (item["device_id"], item["capability"], ts - ts % self.window_ms)

    def closed(self, src: Source, windows: Iterable[Any]) -> None:
        """Windows of ``src`` closed (objects with device_id, capability, start_ms)."""
        by_window = self._ids.get(src)
        if not by_window:
            return
        for w in windows:
            by_window.pop((w.device_id, w.capability, w.start_ms), None)

    def forget(self, sources: Iterable[Source]) -> None:
        for src in sources:
            self._ids.pop(src, None)

    def __len__(self) -> int:
        return sum(len(ids) for part in self._ids.values() for ids in part.values())
