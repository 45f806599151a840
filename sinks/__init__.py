"""EnviroStream sinks: the sink contract, its ClickHouse implementation, the local store."""

from sinks.base import BatchingSink, RowBuffer, SinkBatch

__all__ = ["BatchingSink", "RowBuffer", "SinkBatch"]
