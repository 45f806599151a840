"""Real Prometheus against the real worker: rules reach `firing` for real causes, then clear.

Prometheus (Debian's binary) scrapes the worker and a test producer every second and
evaluates a copy of the project's rules with second-scale durations (``fast_rules``). The
test stops producing (ingest stalls while the producer is up) and sends malformed records
(the dead-letter share rises), and reads each alert's state from Prometheus's HTTP API.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from core.errors import ServiceUnavailableError
from core.settings import Settings
from infra.processes import free_port, port_open
from infra.prometheus_local import (
    RULES_DIR,
    LocalService,
    fast_rules,
    get_json,
    prometheus_alerts,
    start_prometheus,
    stop_local,
)
from schemas import AvroCodec, DecodeError
from tests.integration.conftest import REPO, WorkerProcess, service_env, wait_for_worker
from topics import READINGS
from topics.producer import RecordProducer

STALLED = "EnviroStreamIngestStalled"
DLQ_HIGH = "EnviroStreamDeadLetterRateHigh"
MALFORMED = b"\x00not avro"


def reading(device: str, ts: int, seq: int) -> dict[str, Any]:
    return {
        "reading_id": f"{device}@{ts}/{seq}",
        "device_id": device,
        "device_type": "MACHINE",
        "sensor_id": f"{device}/temperature",
        "capability": "TEMPERATURE",
        "value": 20.0 + seq % 7,
        "unit": "degC",
        "timestamp": ts,
        "sequence": seq,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }


class PacedProducer:
    """Produces ~50 readings/s (and, when asked, malformed records) with its own /metrics."""

    def __init__(self, settings: Settings, port: int) -> None:
        self.codec = AvroCodec()
        self.kafka = RecordProducer(settings.bootstrap_servers)
        self.registry = CollectorRegistry()
        self.produced = Counter(
            "envirostream_readings_produced", "Readings produced.", registry=self.registry
        )
        self.server, _ = start_http_server(port, addr="127.0.0.1", registry=self.registry)
        self.producing = threading.Event()
        self.malformed = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            if self.producing.is_set():
                now = int(time.time() * 1000)
                records = [reading(f"dev-{(seq + i) % 20}", now, seq + i) for i in range(5)]
                values = self.codec.encode_batch("UniversalSensorReading", records)
                self.kafka.send_batch(READINGS, [r["device_id"].encode() for r in records], values)
                self.produced.inc(len(records))
                seq += 5
            if self.malformed.is_set():
                self.kafka.send_batch(READINGS, [b"bad"] * 3, [MALFORMED] * 3)
            self.kafka.flush(5)
            time.sleep(0.1)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.server.shutdown()
        self.kafka.flush(10)


@pytest.fixture(scope="module")
def stack(
    services: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LocalService, PacedProducer, WorkerProcess]]:
    home = tmp_path_factory.mktemp("prometheus")
    rules = home / "rules.yml"
    rules.write_text(fast_rules((RULES_DIR / "envirostream.yml").read_text(), "3s", "10s"))
    worker = WorkerProcess(services, home / "worker.log")
    producer = PacedProducer(services, free_port())
    try:
        prom = start_prometheus(
            home,
            free_port(),
            {
                "envirostream-worker": [f"127.0.0.1:{services.metrics_port}"],
                "envirostream-simulator": [f"127.0.0.1:{producer.server.server_port}"],
            },
            rule_files=[rules],
        )
    except Exception as exc:
        producer.close()
        worker.stop()
        pytest.fail(f"could not start Prometheus: {exc}")
    yield prom, producer, worker
    producer.close()
    worker.stop()
    stop_local(prom)


def scalar(prom: LocalService, promql: str) -> float | None:
    result = get_json(prom.url, "/api/v1/query", query=promql)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_rules_fire_and_clear_for_real_causes(
    stack: tuple[LocalService, PacedProducer, WorkerProcess], services: Settings
) -> None:
    prom, producer, worker = stack
    wait_for_worker(
        lambda: port_open("127.0.0.1", services.metrics_port), 60, "worker /metrics", worker
    )
    producer.producing.set()
    wait_for_worker(
        lambda: (scalar(prom, "sum(rate(envirostream_readings_consumed_total[5s]))") or 0) > 10,
        60,
        "readings consumed, as scraped by Prometheus",
        worker,
    )
    # Before production started the rule was legitimately pending (producer up, nothing
    # consumed); it must clear at the next rule evaluations now that readings flow.
    wait_for_worker(
        lambda: STALLED not in prometheus_alerts(prom.url), 30, f"{STALLED} not active", worker
    )

    # Consumer lag per partition, read from the broker, for every readings partition.
    wait_for_worker(
        lambda: (
            scalar(prom, 'count(envirostream_consumer_lag_records{topic="telemetry.readings"})')
            == services.topic_partitions
        ),
        30,
        "consumer lag gauges of every partition",
        worker,
    )

    producer.producing.clear()
    took = wait_for_worker(
        lambda: prometheus_alerts(prom.url).get(STALLED) == "firing", 60, f"{STALLED}", worker
    )
    print(f"{STALLED} firing {took:.1f}s after production stopped")
    producer.producing.set()
    took = wait_for_worker(
        lambda: STALLED not in prometheus_alerts(prom.url), 60, f"{STALLED} to clear", worker
    )
    print(f"{STALLED} cleared {took:.1f}s after production resumed")

    assert prometheus_alerts(prom.url).get(DLQ_HIGH) is None
    producer.malformed.set()
    took = wait_for_worker(
        lambda: prometheus_alerts(prom.url).get(DLQ_HIGH) == "firing", 60, f"{DLQ_HIGH}", worker
    )
    share = scalar(
        prom,
        "sum(rate(envirostream_records_dead_lettered_total[10s]))"
        " / sum(rate(envirostream_readings_consumed_total[10s]))",
    )
    print(f"{DLQ_HIGH} firing {took:.1f}s after malformed records started (share {share:.2f})")
    assert share is not None and share > 0.01
    producer.malformed.clear()
    took = wait_for_worker(
        lambda: DLQ_HIGH not in prometheus_alerts(prom.url), 60, f"{DLQ_HIGH} to clear", worker
    )
    print(f"{DLQ_HIGH} cleared {took:.1f}s after malformed records stopped")
    assert worker.alive()

    # The operator's view of the same live worker and store.
    out = subprocess.run(
        [sys.executable, "-m", "envirostream", "status"],
        env=service_env(services),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    print(out.stdout)
    assert f"worker :{services.metrics_port} up" in out.stdout
    assert "store " in out.stdout and "NOT ANSWERING" not in out.stdout
    # The malformed records' dead-letter reason, as the codec names it.
    reason = AvroCodec().decode_batch("UniversalSensorReading", [MALFORMED])[0]
    assert isinstance(reason, DecodeError)
    assert reason.reason in out.stdout
    assert re.search(r"telemetry\.readings [\d,]+ records", out.stdout)


def test_rules_file_with_an_error_stops_prometheus_with_the_reason(tmp_path: Path) -> None:
    rules = tmp_path / "broken.yml"
    rules.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: rate(up[5m]\n"
    )
    with pytest.raises(ServiceUnavailableError) as err:
        start_prometheus(tmp_path / "prom", free_port(), {}, rule_files=[rules])
    assert "exited with code" in str(err.value)
    assert "broken.yml" in str(err.value) and "parse error" in str(err.value)
