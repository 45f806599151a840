"""Cut a bound array parameter into pieces every server takes.

ClickHouse's HTTP interface carries a statement's bound parameters in the URL
(``param_x=…``; clickhouse-connect's ``command`` always does, its ``query`` moves large ones
into a form field). Both have limits: the embedded store answers 414 to a request line over
64 KiB, a server to a URI over ``http_max_uri_size`` (1 MiB) or a form field over
``http_max_field_value_size`` (128 KiB). A list of series or windows grows with the fleet
(the rollup refresh of one minute of 200 devices binds 2,764 series, 232 kB encoded), so
statements that bind one are run once per piece of at most :data:`BIND_BUDGET` bytes,
counted as if every byte were percent-encoded (3 bytes each).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

__all__ = ["BIND_BUDGET", "bound_size", "bounded_chunks"]

T = TypeVar("T", bound=Sequence[object])

BIND_BUDGET = 48_000
"""Most bytes of one bound array, percent-encoded in the worst case (under 64 KiB with the
rest of the request line)."""


def bound_size(item: Sequence[object]) -> int:
    """Worst-case encoded bytes of one tuple in a bound array: each field as text with its
    quotes and comma, every byte percent-encoded, plus the tuple's brackets.

    >>> bound_size(("t", "dev-1", "FLOW", "1m"))
    78
    """
    return 3 * (2 + sum(len(str(f).encode()) + 3 for f in item))


def bounded_chunks(items: Iterable[T], budget: int = BIND_BUDGET) -> Iterator[list[T]]:
    """``items`` in order, in consecutive lists of at most ``budget`` bytes by
    :func:`bound_size` (a single item over the budget is a list of its own).

    >>> [len(c) for c in bounded_chunks([("a",)] * 5, budget=45)]
    [2, 2, 1]
    >>> list(bounded_chunks([]))
    []
    """
    chunk: list[T] = []
    used = 0
    for item in items:
        size = bound_size(item)
        if chunk and used + size > budget:
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += size
    if chunk:
        yield chunk
