"""Record types shared by every floor (plain aliases and value types, no I/O)."""

from __future__ import annotations

__all__ = ["Source"]

Source = tuple[str, int]
"""Where an input record came from: (topic, partition)."""
