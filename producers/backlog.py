"""Readings held back by a gateway (store-and-forward) until their device is released.

A :class:`Backlog` belongs to one model group of the fleet (rows of ``n_channels`` per
device, starting at ``row_offset``). Held rows keep their event time and the fleet tick
that produced them; :meth:`Backlog.release` hands a device's rows back in event-time order.

>>> backlog = Backlog(row_offset=10, n_channels=2, n_devices=2)
>>> rows = np.array([10, 11, 12, 13])
>>> backlog.hold(rows, np.full(4, 1_000), np.arange(4.0), np.ones(4, np.int64), tick=0)
>>> backlog.hold(rows[:2], np.full(2, 2_000), np.arange(2.0), np.ones(2, np.int64), tick=1)
>>> out = backlog.release(np.array([True, False]))
>>> out.rows.tolist(), out.ts_ms.tolist(), out.ticks.tolist()
([10, 11, 10, 11], [1000, 1000, 2000, 2000], [0, 0, 1, 1])
>>> backlog.release(np.array([True, True])).rows.tolist(), len(backlog)
([12, 13], 0)
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

__all__ = ["Backlog", "HeldRows"]


@dataclass(frozen=True)
class HeldRows:
    """Rows of the fleet's static table with their event times, values, labels and tick."""

    rows: np.ndarray
    ts_ms: np.ndarray
    values: np.ndarray
    label_codes: np.ndarray
    ticks: np.ndarray  # the fleet tick (0, 1, ...) that produced each row


class Backlog:
    """The held-back rows of one model group, in the order they were held."""

    def __init__(self, row_offset: int, n_channels: int, n_devices: int) -> None:
        self._row_offset = row_offset
        self._n_channels = n_channels
        self.holding = np.zeros(n_devices, dtype=bool)  # per device: has rows held back
        self._chunks: list[HeldRows] = []

    def __len__(self) -> int:
        return sum(len(c.rows) for c in self._chunks)

    def hold(
        self,
        rows: np.ndarray,
        ts_ms: np.ndarray,
        values: np.ndarray,
        label_codes: np.ndarray,
        tick: int,
    ) -> None:
        """Keep these rows (produced at fleet tick ``tick``) until their device is released."""
        if len(rows) == 0:
            return
        self._chunks.append(
            HeldRows(rows, ts_ms, values, label_codes, np.full(len(rows), tick, dtype=np.int64))
        )
        self.holding[(rows - self._row_offset) // self._n_channels] = True

    def release(self, devices: np.ndarray) -> HeldRows | None:
        """Remove and return the held rows of ``devices`` (a mask), ordered by event time."""
        due = devices & self.holding
        if not due.any():
            return None
        names = [f.name for f in fields(HeldRows)]
        held = HeldRows(*(np.concatenate([getattr(c, n) for c in self._chunks]) for n in names))
        out = due[(held.rows - self._row_offset) // self._n_channels]
        rest = _take(held, ~out)
        self._chunks = [rest] if len(rest.rows) else []
        self.holding &= ~due
        released = _take(held, out)
        return _take(released, np.argsort(released.ts_ms, kind="stable"))  # ties: held order


def _take(held: HeldRows, index: np.ndarray) -> HeldRows:
    return HeldRows(*(getattr(held, f.name)[index] for f in fields(HeldRows)))
