"""Late readings correct the aggregates already emitted for their windows.

A reading whose window its device has already emitted is stored raw like every other (the
``readings`` table is the record of what devices sent). Within the correction horizon its
window is remembered here as *pending*; once the sink has stored the late rows, the window's
statistics are recomputed from every stored reading of it and sent on ``telemetry.aggregates``
again. The ``aggregates`` table keeps the row with the larger ``count`` (its version), so the
corrected row replaces the one emitted before. Input offsets are held below the first late
reading whose correction has not been sent, so a crash before the correction replays it.

>>> c = WindowCorrections(window_ms=60_000, window_label="1m")
>>> c.add([LateWindow(("t", 0), 42, "default", "d", "VOC", 120_000)])
>>> c.hold(("t", 0)), c.pending
(42, 1)
>>> stats = {"tenant_id": "default", "device_id": "d", "capability": "VOC",
...          "window_start": 120_000, "window_end": 180_000, "count": 3}
>>> [r["window_size"] for r in c.records([stats])]
['1m']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from core.records import Source
from sinks.base import WindowRef
from streams.readings import LateWindow

__all__ = ["WindowCorrections"]


class WindowCorrections:
    """Windows changed by late readings, waiting for their rows to be stored."""

    def __init__(self, window_ms: int, window_label: str) -> None:
        self.window_ms = window_ms
        self.window_label = window_label
        self._pending: dict[Source, dict[WindowRef, int]] = {}
        # taken by a flush not yet done (their offsets stay held): by id of the taken dict
        self._taken: dict[int, dict[Source, dict[WindowRef, int]]] = {}

    @property
    def pending(self) -> int:
        return sum(len(refs) for refs in self._pending.values())

    def add(self, late: Iterable[LateWindow]) -> None:
        for w in late:
            refs = self._pending.setdefault(w.source, {})
            ref = (w.tenant_id, w.device_id, w.capability, w.start_ms)
            if ref not in refs or w.offset < refs[ref]:
                refs[ref] = w.offset

    def hold(self, source: Source) -> int | None:
        """The first input offset of ``source`` whose correction has not been sent (pending,
        or taken by a flush not yet :meth:`done`)."""
        held = [
            min(refs.values())
            for d in (self._pending, *self._taken.values())
            if (refs := d.get(source))
        ]
        return min(held) if held else None

    def take(self) -> dict[Source, dict[WindowRef, int]]:
        """Every pending window (the caller recomputes them once their rows are stored, then
        calls :meth:`done`, or :meth:`restore` if that failed); held until then."""
        taken, self._pending = self._pending, {}
        self._taken[id(taken)] = taken
        return taken

    def done(self, taken: dict[Source, dict[WindowRef, int]]) -> None:
        """The corrections of ``taken`` were sent: their offsets are no longer held."""
        self._taken.pop(id(taken), None)

    def restore(self, taken: dict[Source, dict[WindowRef, int]]) -> None:
        """Put windows back after their recomputation failed."""
        self.done(taken)
        for source, refs in taken.items():
            mine = self._pending.setdefault(source, {})
            for ref, offset in refs.items():
                mine[ref] = min(offset, mine.get(ref, offset))

    def forget(self, sources: Iterable[Source]) -> None:
        for source in sources:
            self._pending.pop(source, None)
            for taken in self._taken.values():
                taken.pop(source, None)

    def records(self, stats: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``WindowAggregate`` records from recomputed window statistics."""
        return [{**s, "window_size": self.window_label} for s in stats]
