"""A device's learned state as changelog bytes, and back (the detector-state changelog).

The one place that knows the record format: zlib-compressed JSON of plain numbers, strings
and lists, with a format version, written and read field by field with the types checked
(``streams.detect.state``). Nothing in a record chooses a class or runs code: the classes
are the ones the code expects at each place (a series' baseline is a
:class:`~streams.detect.univariate.SeasonalZScore`, a signal's state the class its
:class:`~streams.signals.base.Signal` declares). A record of another version, a pickle of
older versions, bad JSON, a missing field or a value of the wrong type raises
:class:`SnapshotRejected` with the reason (one of ``core.metrics.CHECKPOINT_REJECTIONS``):
that device warms up again and nothing else is affected.

``{"format": "envirostream.device", "version": 3, "device_type": …, "last_seen": …,
"series": {sensor: {"capability": …, "last_ts": …, "detector": {…}}},
"signals": {signal name: {"device": {…} | null, "series": {sensor: {…}}}}}``

>>> from streams.signals import SIGNALS, DetectionConfig
>>> signals = [cls(DetectionConfig()) for cls in SIGNALS]
>>> dev = DeviceState("MACHINE", last_seen=5)
>>> decode_device(encode_device(dev, signals), signals).last_seen
5
>>> try:
...     decode_device(b"not a snapshot", signals)
... except SnapshotRejected as e:
...     print(e)
undecodable: not zlib data (error)
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

from core.metrics import CHECKPOINT_REJECTIONS
from streams.detect.state import State, read_dict, read_int, read_str
from streams.detect.univariate import SeasonalZScore
from streams.signals.base import DeviceState, SeriesState, Signal

__all__ = [
    "CHECKPOINT_VERSION",
    "SnapshotRejected",
    "decode_device",
    "device_from_state",
    "device_to_state",
    "encode_device",
]

CHECKPOINT_VERSION = 3
"""Version of the changelog records (3: typed JSON; the pickled records of versions 1 and 2
are refused, and those devices warm up again)."""

_FORMAT = "envirostream.device"
_UNDECODABLE, _VERSION, _INVALID = CHECKPOINT_REJECTIONS
_MAX_BYTES = 16 << 20  # decompressed: a vehicle's state is ~100 kB; a zip bomb stops here


class SnapshotRejected(ValueError):
    """A changelog record that is not a device state of this version (``reason``: one of
    ``CHECKPOINT_REJECTIONS``; the message says what was wrong)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def device_to_state(dev: DeviceState, signals: Sequence[Signal]) -> State:
    """``dev`` as plain data (the state of ``signals``; others' states are not kept)."""
    return {
        "format": _FORMAT,
        "version": CHECKPOINT_VERSION,
        "device_type": dev.device_type,
        "last_seen": dev.last_seen,
        "series": {
            key: {
                "capability": ser.capability,
                "last_ts": ser.last_ts,
                "detector": ser.detector.to_state(),
            }
            for key, ser in dev.series.items()
        },
        "signals": {sig.name: sig.to_state(dev) for sig in signals},
    }


def device_from_state(d: Any, signals: Sequence[Signal]) -> DeviceState:
    """The device :func:`device_to_state` wrote; ``StateError``/``ValueError`` when ``d`` is
    not one (states of signals not in ``signals`` are ignored)."""
    dev = DeviceState(read_str(d, "device_type"), last_seen=read_int(d, "last_seen"))
    for key, part in read_dict(d, "series").items():
        dev.series[key] = SeriesState(
            read_str(part, "capability"),
            SeasonalZScore.from_state(read_dict(part, "detector")),
            last_ts=read_int(part, "last_ts"),
        )
    states = read_dict(d, "signals")
    for sig in signals:
        if sig.name in states:
            sig.from_state(dev, read_dict(states, sig.name))
    return dev


def encode_device(dev: DeviceState, signals: Sequence[Signal]) -> bytes:
    """The changelog value of ``dev``: compressed JSON (NaN and infinities as Python's
    ``json`` writes them)."""
    text = json.dumps(device_to_state(dev, signals), separators=(",", ":"))
    return zlib.compress(text.encode(), 1)


def decode_device(value: bytes, signals: Sequence[Signal]) -> DeviceState:
    """The device of a changelog value; :class:`SnapshotRejected` saying why it is not one."""
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(value, _MAX_BYTES)
    except (zlib.error, TypeError) as e:
        raise SnapshotRejected(_UNDECODABLE, f"not zlib data ({type(e).__name__})") from e
    if inflate.unconsumed_tail:
        msg = f"more than {_MAX_BYTES} bytes uncompressed"
        raise SnapshotRejected(_UNDECODABLE, msg)
    try:
        d = json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        msg = f"not JSON (a pickled record of version 2 or older?): {type(e).__name__}"
        raise SnapshotRejected(_UNDECODABLE, msg) from e
    if not isinstance(d, dict) or d.get("format") != _FORMAT:
        raise SnapshotRejected(_UNDECODABLE, "not a device state record")
    version = d.get("version")
    if version != CHECKPOINT_VERSION:
        msg = f"version {version!r:.20}, this worker reads {CHECKPOINT_VERSION}"
        raise SnapshotRejected(_VERSION, msg)
    try:
        return device_from_state(d, signals)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as e:
        raise SnapshotRejected(_INVALID, str(e)[:200]) from e
