"""The detector-state changelog format: typed JSON that loads nothing but numbers.

A forged, corrupt, foreign or old (pickled) record is refused with its reason, counted in
``envirostream_checkpoints_rejected_total`` and logged once per partition load; that device
warms up again and the others load.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import zlib
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from core.metrics import PipelineMetrics
from core.settings import Settings
from streams import checkpoints as checkpoints_module
from streams.checkpoints import DetectorCheckpoints
from streams.detection import DetectionStage
from streams.device_snapshot import CHECKPOINT_VERSION, SnapshotRejected, decode_device

SRC = ("telemetry.readings", 3)
START = 1_767_225_600_000


class _RunsCode:
    """Pickles as a call of ``os.system``: loading it would create ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _stage_with_devices(n: int = 2) -> DetectionStage:
    stage = DetectionStage(warmup=20)
    for i in range(60):
        for d in range(n):
            stage.observe(
                SRC,
                {
                    "reading_id": f"r{d}-{i}",
                    "device_id": f"d{d}",
                    "device_type": "MACHINE",
                    "sensor_id": f"d{d}/t",
                    "capability": "BEARING_TEMPERATURE",
                    "value": 50.0 + (i % 7) * 0.3 + d,
                    "timestamp": START + i * 60_000,
                    "sequence": i,
                    "quality": "GOOD",
                    "tenant_id": "default",
                },
            )
    return stage


def _records(stage: DetectionStage) -> dict[bytes, bytes]:
    return {k: v for _, k, v in stage.checkpoint()}


def _plain(value: bytes) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(zlib.decompress(value))
    return out


def _pack(d: dict[str, Any]) -> bytes:
    return zlib.compress(json.dumps(d).encode())


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "zlib"])
def test_a_pickle_that_would_run_code_is_refused_and_runs_nothing(
    tmp_path: Path, compress: bool
) -> None:
    marker = tmp_path / "pwned"
    forged = pickle.dumps((2, _RunsCode(marker)))
    assert not marker.exists()
    stage = DetectionStage()
    value = zlib.compress(forged) if compress else forged
    assert stage.load_checkpoint([(b"default/evil", value)], SRC) == 0
    assert not marker.exists(), "the forged pickle was loaded"
    assert [(k, e.reason) for k, e in stage.rejected] == [(b"default/evil", "undecodable")]
    assert ("default", "evil") not in stage.devices


def test_every_device_round_trips_to_the_same_state() -> None:
    stage = _stage_with_devices()
    records = _records(stage)
    other = DetectionStage(warmup=20)
    assert other.load_checkpoint(records.items(), SRC) == 2
    assert other.rejected == []
    other.dirty = dict.fromkeys(other.devices)  # a load does not mark devices changed
    again = _records(other)
    assert {k: _plain(v) for k, v in again.items()} == {k: _plain(v) for k, v in records.items()}


def _break(d: dict[str, Any], how: str) -> None:
    ser = next(iter(d["series"].values()))
    if how == "missing_field":
        del ser["detector"]["profile"]
    elif how == "wrong_type":
        ser["detector"]["n_learned"] = "300"
    elif how == "bool_for_int":
        d["last_seen"] = True
    elif how == "short_list":
        ser["detector"]["counts"] = [1, 2]
    elif how == "unknown_model_kind":
        d["signals"]["window"]["device"]["model_kind"] = "pickle"
    elif how == "signal_state_not_object":
        d["signals"]["score"]["series"] = [1]


@pytest.mark.parametrize(
    "how",
    [
        "missing_field",
        "wrong_type",
        "bool_for_int",
        "short_list",
        "unknown_model_kind",
        "signal_state_not_object",
    ],
)
def test_a_record_with_a_missing_field_or_wrong_type_is_refused(how: str) -> None:
    stage = _stage_with_devices(1)
    ((key, value),) = _records(stage).items()
    d = _plain(value)
    _break(d, how)
    other = DetectionStage(warmup=20)
    with pytest.raises(SnapshotRejected) as info:
        decode_device(_pack(d), other.signals)
    assert info.value.reason == "invalid"
    assert other.load_checkpoint([(key, _pack(d))], SRC) == 0
    assert [e.reason for _, e in other.rejected] == ["invalid"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "undecodable"),
        (zlib.compress(b"{not json"), "undecodable"),
        (zlib.compress(b"[1, 2]"), "undecodable"),
        (
            zlib.compress(json.dumps({"format": "envirostream.device", "version": 2}).encode()),
            "version",
        ),
        (zlib.compress(b"[" * 100_000), "undecodable"),  # nesting past the recursion limit
    ],
)
def test_corrupt_and_foreign_records_name_their_reason(value: bytes, reason: str) -> None:
    with pytest.raises(SnapshotRejected) as info:
        decode_device(value, DetectionStage().signals)
    assert info.value.reason == reason


def test_the_version_is_written_in_every_record() -> None:
    (value,) = _records(_stage_with_devices(1)).values()
    assert _plain(value)["version"] == CHECKPOINT_VERSION == 3


def test_refused_records_are_counted_and_logged_once_per_partition(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    good = _records(_stage_with_devices(2))
    bad_key, bad_value = next(iter(good.items()))
    d = _plain(bad_value)
    _break(d, "wrong_type")
    marker = tmp_path / "pwned"
    changelog = {
        **good,
        bad_key: _pack(d),
        b"default/old": zlib.compress(pickle.dumps((2, _RunsCode(marker)))),
        b"default/future": _pack({**_plain(bad_value), "version": 4}),
    }
    monkeypatch.setattr(
        checkpoints_module, "read_latest_state", lambda *_args, **_kw: dict(changelog)
    )
    metrics = PipelineMetrics(CollectorRegistry())
    stage = DetectionStage(warmup=20)
    saver = DetectorCheckpoints(Settings(), stage, None, None, metrics)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="streams.checkpoints"):
        restored = asyncio.run(saver.restore_models([3]))
    assert restored == 1  # the other good device
    assert not marker.exists()
    counts = {
        r: metrics.registry.get_sample_value(
            "envirostream_checkpoints_rejected_total", {"reason": r}
        )
        for r in ("undecodable", "version", "invalid")
    }
    assert counts == {"undecodable": 1.0, "version": 1.0, "invalid": 1.0}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "refused 3 records" in warnings[0].getMessage()
    assert stage.rejected == []  # taken by the count
