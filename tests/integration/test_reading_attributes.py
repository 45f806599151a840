"""A reading's ``attributes`` map reaches the ``readings`` table (issue #14), also in a store
created by a version whose ``readings`` had no such column.

The store holds readings written before the upgrade (no ``attributes`` column); the worker
starts, gives the table the column, and stores new readings with their attributes. Every
reading is read back by its id: the new ones carry exactly what was sent, the one sent
without attributes and the rows stored before the upgrade read as an empty map.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from core.settings import Settings
from schemas import AvroCodec
from sinks.client import get_client
from sinks.ddl import TABLES
from tests.integration.conftest import WorkerProcess, wait_for_worker
from tests.integration.test_pipeline import produce
from topics import TopicAdmin, topic_specs

pytestmark = pytest.mark.integration

NOW_MS = (int(time.time() * 1000) // 10_000) * 10_000 - 60_000
SENT = {
    "pump-1@0": {"site": "north", "rack": "7"},
    "pump-1@1": {"site": "north", "firmware": "2.4.1", "note": 'é ü, "quoted"'},
    "pump-1@2": {},  # a reading without attributes
}
OLD_IDS = [f"old-1@{i}" for i in range(3)]


def reading(reading_id: str, seq: int, attributes: dict[str, str]) -> dict[str, Any]:
    device = reading_id.split("@")[0]
    return {
        "reading_id": reading_id,
        "device_id": device,
        "device_type": "MACHINE",
        "sensor_id": f"{device}/t",
        "capability": "TEMPERATURE",
        "value": 20.0 + seq,
        "unit": "degC",
        "timestamp": NOW_MS + seq * 1000,
        "sequence": seq,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": attributes,
        "label": None,
    }


@pytest.fixture(scope="module")
def worker(services: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    TopicAdmin(services.bootstrap_servers).create_missing(topic_specs(services))
    client = get_client(services)
    # ``readings`` as the version before issue #14 left it: no attributes column, some rows.
    table = TABLES["readings"]
    old = replace(table, columns=tuple(c for c in table.columns if c[0] != "attributes"))
    client.command(old.create_sql(30))
    rows = [
        [NOW_MS - 600_000 + i * 1000, "default", "old-1", "MACHINE", "old-1/t", "TEMPERATURE",
         1.0 + i, "degC", "GOOD", i, rid, "", ""]
        for i, rid in enumerate(OLD_IDS)
    ]  # fmt: skip
    client.insert("readings", rows, column_names=old.column_names)
    proc = WorkerProcess(services, tmp_path_factory.mktemp("logs") / "worker.log")
    try:
        yield proc
    finally:
        proc.stop()


def test_attributes_are_stored_per_reading_and_old_rows_read_empty(
    services: Settings, worker: WorkerProcess
) -> None:
    client = get_client(services)
    produce(
        services,
        [reading(rid, i, attrs) for i, (rid, attrs) in enumerate(SENT.items())],
        AvroCodec(),
    )

    def stored() -> dict[str, dict[str, str]]:
        try:
            rows = client.query(
                "SELECT reading_id, attributes FROM readings FINAL ORDER BY reading_id"
            ).result_rows
        except Exception:  # the column is added when the worker's sink starts
            return {}
        return {str(r): dict(a) for r, a in rows}

    wait_for_worker(lambda: set(SENT) <= set(stored()), 120, "the readings with attributes", worker)
    got = stored()
    assert {rid: got[rid] for rid in SENT} == SENT
    assert {rid: got[rid] for rid in OLD_IDS} == {rid: {} for rid in OLD_IDS}
    assert len(got) == len(SENT) + len(OLD_IDS)
    ctype = client.command(
        "SELECT type FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'readings' AND name = 'attributes'"
    )
    assert str(ctype) == dict(TABLES["readings"].columns)["attributes"]
