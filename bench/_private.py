"""Settings for a benchmark's private services: own data dir, free ports, own group."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from core.settings import Settings, load_settings
from infra.processes import free_port

__all__ = ["private_settings"]


def private_settings(base: Settings, prefix: str, **overrides: object) -> Settings:
    """Settings that leave a running pipeline (``base``) untouched; Kafka jars are shared."""
    values: dict[str, object] = {
        "data_dir": Path(tempfile.mkdtemp(prefix=prefix)),
        "cache_dir": base.cache_dir.resolve(),
        "kafka_port": free_port(),
        "kafka_controller_port": free_port(),
        "store_port": free_port(),
        "metrics_port": free_port(),
        "topic_partitions": base.topic_partitions,
        "app_id": f"bench-{uuid.uuid4().hex[:8]}",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return load_settings({}, **values)
