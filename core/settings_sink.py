"""The ClickHouse sink's part of :class:`core.settings.Settings`: how rows are batched into
inserts, retried while the store is down, and bounded in memory (``ENVIROSTREAM_SINK_*``).
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

__all__ = ["SinkSettings"]


class SinkSettings(BaseSettings):
    """``ENVIROSTREAM_SINK_*``: insert batches, retries and the buffer bound."""

    sink_batch_rows: int = Field(
        default=50_000, ge=1, description="Rows per ClickHouse insert (max)."
    )
    sink_batch_seconds: float = Field(
        default=1.0, gt=0, le=600, description="Max age of buffered rows before an insert."
    )
    sink_max_partitions_per_insert: int = Field(
        default=100,
        ge=1,
        description="Most table partitions (months) one insert block touches; a batch that "
        "spans more is split (ClickHouse refuses blocks over its "
        "max_partitions_per_insert_block, 100 by default, with TOO_MANY_PARTS).",
    )
    sink_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="How long one insert may take before it counts as failed (and is retried; "
        "rows are deduplicated by their sorting key).",
    )
    sink_retry_initial_seconds: float = Field(
        default=0.5,
        gt=0,
        le=600,
        description="Wait before retrying a failed insert; doubles per failure.",
    )
    sink_retry_max_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Longest wait between retries of a failed insert (the store is retried "
        "for as long as it is down; nothing is committed past unstored rows).",
    )
    sink_pipelined: bool = Field(
        default=True,
        description="Write to the store in the background while the worker goes on with "
        "its input (one round of inserts at a time for the readings, one for the other "
        "tables; offsets commit only behind stored rows). "
        "false: the input waits for every round of inserts.",
    )
    sink_max_buffered_rows: int = Field(
        default=500_000,
        ge=1,
        description="Rows buffered for the sink (all tables) above which the worker stops "
        "fetching input until they are stored (bounded memory while the store is down).",
    )
