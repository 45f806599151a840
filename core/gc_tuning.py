"""The worker's garbage collector, tuned for a large heap of long-lived, acyclic state.

The detection state is millions of small objects that live as long as their device (about
4 kB of them per series) and hold no reference cycles: a full collection of 300,000
readings' worth of state found nothing to free. With Python's default thresholds
(700, 10, 10) the collector still traversed all of it again and again: in
`envirostream bench soak --devices 800` a full collection ran every ~3 s, 0.2 s each (10% of
the wall clock, and each a stall of the input), and in process the collector took 2.9 µs of
a reading's ~21 (docs/performance.md, "Garbage collection"). Young collections keep
Python's cadence: the cycles that asyncio and aiokafka make die young and hold fetched
buffers, and letting them wait (a gen0 threshold of 100,000) grew the worker by 5 MiB a
second. Only full collections become rarer.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc(thresholds: tuple[int, int, int]) -> None:
    """Set the collector's ``thresholds`` and move what exists now (modules, classes, the
    app) out of its way for good (``gc.freeze``): call once, after startup.

    >>> before = gc.get_threshold()
    >>> tune_gc((700, 10, 1000)); gc.get_threshold()
    (700, 10, 1000)
    >>> gc.unfreeze(); gc.set_threshold(*before)
    """
    gc.set_threshold(*thresholds)
    gc.freeze()
