"""What ``envirostream bench chaos`` sends: the faulty fleet in real time, the recorded and
the 30-year CSV replays, and the malformed records; each keeps the reading ids it sent."""

from __future__ import annotations

import csv
import datetime as dt
import math
import threading
import time
from pathlib import Path
from typing import Any

from bench.chaos_check import MALFORMED_KEY_PREFIX, tick_reading_ids
from core.errors import EnviroStreamError
from core.settings import Settings
from producers.encoding import READING_SCHEMA, TickEncoder
from producers.fleet import Fleet
from producers.models import KINDS
from producers.replay import CsvSource, Row, replay
from producers.scenarios import ClockSkew, GatewayOutage, Scenario
from schemas import AvroCodec
from topics import READINGS
from topics.kafka_config import KafkaTarget
from topics.producer import RecordProducer

__all__ = [
    "FAILURE_RATE",
    "FleetFeed",
    "chaos_fleet",
    "history_csv",
    "inject_malformed",
    "replay_csv",
    "write_years_csv",
]

FAILURE_RATE = 0.25  # share of the fleet in gateway_outage or clock_skew
HISTORY_FILE = Path("realKnownCause") / "ambient_temperature_system_failure.csv"
CAPABILITY = "GENERIC"


def chaos_fleet(devices: int, seed: int, run_s: float) -> Fleet:
    """The seeded fleet; ~:data:`FAILURE_RATE` of it in ``gateway_outage`` or ``clock_skew``.

    Onsets and the outage are scaled to the run; skews stay within 2 min (inside the worker's
    ``ENVIROSTREAM_MAX_FUTURE_SECONDS``, so none is quarantined as a clock fault).

    >>> fleet = chaos_fleet(40, 7, 180)
    >>> sorted(set(fleet.assignments.values()))
    ['clock_skew', 'gateway_outage']
    """
    outage = type(
        "ChaosGatewayOutage", (GatewayOutage,), {"onset_s": 0.3 * run_s, "in_random_mix": True}
    )(duration_s=0.2 * run_s)
    skew = type(
        "ChaosClockSkew",
        (ClockSkew,),
        {"onset_s": 0.2 * run_s, "in_random_mix": True, "offset_range_s": (2.0, 120.0)},
    )()
    scenarios: dict[str, Scenario] = {outage.name: outage, skew.name: skew}
    return Fleet(devices, KINDS, seed, failure_rate=FAILURE_RATE, scenarios=scenarios)


def write_years_csv(path: Path, years: int = 30, first_year: int = 1995) -> Path:
    """Monthly rows over ``years`` years (first of each month, UTC): a long recorded series.

    >>> import tempfile
    >>> p = write_years_csv(Path(tempfile.mkdtemp()) / "y.csv", years=2)
    >>> lines = p.read_text().splitlines()
    >>> len(lines), lines[1], lines[-1]
    (25, '1995-01-01T00:00:00Z,10.0', '1996-12-01T00:00:00Z,5.769')
    """
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value"])
        for i in range(12 * years):
            month = dt.datetime(first_year + i // 12, i % 12 + 1, 1, tzinfo=dt.UTC)
            out.writerow([month.strftime("%Y-%m-%dT%H:%M:%SZ"), round(10 + 5 * math.sin(i), 3)])
    return path


def write_hourly_csv(path: Path, rows: int = 7_267, start: str = "2013-07-04") -> Path:
    """Hourly rows from ``start`` (UTC): a recorded log like NAB's ambient temperature.

    >>> import tempfile
    >>> p = write_hourly_csv(Path(tempfile.mkdtemp()) / "h.csv", rows=3)
    >>> p.read_text().splitlines()[1:]
    ['2013-07-04T00:00:00Z,70.0', '2013-07-04T01:00:00Z,71.237', '2013-07-04T02:00:00Z,72.397']
    """
    first = dt.datetime.fromisoformat(start).replace(tzinfo=dt.UTC)
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value"])
        for i in range(rows):
            at = first + dt.timedelta(hours=i)
            out.writerow([at.strftime("%Y-%m-%dT%H:%M:%SZ"), round(70 + 5 * math.sin(i / 4), 3)])
    return path


class FleetFeed(threading.Thread):
    """The fleet in real time (one tick per second) until stopped; keeps every id it sends."""

    def __init__(self, fleet: Fleet, kafka: KafkaTarget, codec: AvroCodec) -> None:
        super().__init__(name="chaos-fleet", daemon=True)
        self.fleet, self.codec = fleet, codec
        # The broker outage is on purpose: librdkafka's per-second connect errors are noise.
        self.producer = RecordProducer(kafka, extra={"log_level": 2})
        self.stop_event = threading.Event()
        self.ids: set[str] = set()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            encoder = TickEncoder(self.fleet, self.codec)
            start_ms = int(time.time()) * 1000
            wall0, seq = time.monotonic(), 0
            while not self.stop_event.wait(max(0.0, wall0 + seq - time.monotonic())):
                tick = self.fleet.tick(start_ms + seq * 1000)
                keys, values = encoder.encode(tick, seq)
                self.producer.send_batch(READINGS, keys, values)
                self.ids.update(tick_reading_ids(tick))
                seq += 1
            self.producer.flush(timeout=120.0)
        except BaseException as exc:  # reported by the bench, never lost in a thread
            self.error = exc


def history_csv(settings: Settings, nab_dir: str | None) -> Path:
    from bench.nab import resolve_nab_dir

    try:
        return resolve_nab_dir(nab_dir, settings) / HISTORY_FILE
    except EnviroStreamError as exc:
        print(f"  {exc}; replaying a generated hourly log of 2013-14 in its place", flush=True)
        return write_hourly_csv(settings.data_dir / "history.csv")


def replay_csv(settings: Settings, path: Path, device: str, codec: AvroCodec) -> set[str]:
    source = CsvSource(path, "timestamp", "value")
    report = replay(source, device, CAPABILITY, RecordProducer(settings), codec, READINGS)
    if report.undelivered or report.skipped:
        print(
            f"  replay of {path.name}: {report.undelivered} undelivered, "
            f"{report.skipped} rows skipped",
            flush=True,
        )
    return {f"{device}/{CAPABILITY.lower()}@{row.ts_ms}" for row in source if isinstance(row, Row)}


def inject_malformed(settings: Settings, codec: AvroCodec) -> int:
    good = codec.encode_batch(READING_SCHEMA, [_probe_reading()])[0]
    values = [b"not avro at all", b"", b"\xc3\x01" + b"\x00" * 8, good[: len(good) // 2], good[:12]]
    keys = [MALFORMED_KEY_PREFIX + str(i).encode() for i in range(len(values))]
    producer = RecordProducer(settings)
    producer.send_batch(READINGS, keys, values)
    producer.flush(timeout=60.0)
    return len(values)


def _probe_reading() -> dict[str, Any]:
    return {
        "reading_id": "chaos-malformed@0",
        "device_id": "chaos-malformed",
        "device_type": "MACHINE",
        "sensor_id": "chaos-malformed/t",
        "capability": "TEMPERATURE",
        "value": 1.0,
        "unit": "degC",
        "timestamp": int(time.time() * 1000),
        "sequence": 0,
        "quality": "GOOD",
        "tenant_id": "default",
        "attributes": {},
        "label": None,
    }
