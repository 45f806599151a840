"""The Python runtime part of :class:`core.settings.Settings`: the worker's garbage collector."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

__all__ = ["RuntimeSettings"]


class RuntimeSettings(BaseSettings):
    """How the worker's cyclic garbage collector runs (docs/performance.md, "Garbage
    collection")."""

    worker_gc_threshold: str = Field(
        default="700,10,1000",
        description="The worker's `gc.set_threshold` (gen0,gen1,gen2): young collections as "
        "Python's default, full ones 100 times rarer (the default 700,10,10 traversed the "
        "worker's millions of long-lived objects every ~3 s at 800 devices, 0.2 s each, "
        "finding nothing); `700,10,10` restores the default.",
    )

    @field_validator("worker_gc_threshold")
    @classmethod
    def _check_gc_threshold(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",")]
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            msg = f"expected three positive integers gen0,gen1,gen2, got {value!r}"
            raise ValueError(msg)
        return ",".join(parts)

    @property
    def gc_thresholds(self) -> tuple[int, int, int]:
        """``ENVIROSTREAM_WORKER_GC_THRESHOLD`` as ``gc.set_threshold`` takes it."""
        a, b, c = (int(p) for p in self.worker_gc_threshold.split(","))
        return a, b, c
