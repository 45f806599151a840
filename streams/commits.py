"""Offset bookkeeping: which input offsets are safe to commit, and committing them.

The rule (docs/design.md, "Offsets and restarts"): a partition is committed only up to the
smallest offset still needed — the first reading of a window still open, the first row the
sink has not made durable — and only after every output already sent was acknowledged by
the broker. :func:`safe_offsets` is that rule as a pure function;
:class:`OffsetCommitter` remembers what was committed and commits only what moved on.

>>> safe_offsets({("r", 0): 12, ("r", 1): 5}, pending_from={("r", 0): 9}.get)
{('r', 0): 9, ('r', 1): 5}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from faust.types import TP

from core.records import Source

__all__ = ["CommitFunction", "CommitUnavailableError", "OffsetCommitter", "safe_offsets"]

CommitFunction = Callable[[dict[TP, int]], Awaitable[Any]]


class CommitUnavailableError(RuntimeError):
    """The broker could not take the commit now (unreachable, group rebalancing): nothing
    was recorded as committed; the next commit tries again from the same offsets."""


def safe_offsets(
    progress: Mapping[Source, int], pending_from: Callable[[Source], int | None]
) -> dict[Source, int]:
    """Per source, ``progress`` (how far the stages are done) held below the first offset
    with a row not yet durable (``pending_from``)."""
    out: dict[Source, int] = {}
    for source, offset in progress.items():
        pending = pending_from(source)
        out[source] = offset if pending is None else min(offset, pending)
    return out


class OffsetCommitter:
    """The offsets committed so far, and the consumer's commit (bound once it exists)."""

    def __init__(self, commit: CommitFunction | None = None) -> None:
        self._commit = commit
        self.committed: dict[Source, int] = {}

    def bind(self, commit: CommitFunction) -> None:
        """Set how offsets are committed (the input consumer, once it exists)."""
        self._commit = commit

    async def commit(self, offsets: Mapping[Source, int]) -> dict[Source, int]:
        """Commit the ``offsets`` that moved past the last commit; return those."""
        moved = {src: off for src, off in offsets.items() if off > self.committed.get(src, -1)}
        if moved:
            if self._commit is None:
                msg = "no consumer bound: call bind() before processing"
                raise RuntimeError(msg)
            await self._commit({TP(*src): off for src, off in moved.items()})
            self.committed.update(moved)
        return moved

    def forget(self, sources: Iterable[Source]) -> None:
        for source in sources:
            self.committed.pop(source, None)
