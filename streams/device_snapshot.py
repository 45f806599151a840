"""A device's learned state as changelog bytes, and back (the detector-state changelog).

The one place that knows the format: version + compressed pickle of a
:class:`~streams.signals.base.DeviceState`. A record of another version, or one that does
not decode, gives ``None``: that device warms up again and nothing else is affected.
The records are this worker's own, read from a topic only the pipeline writes to (restrict
it with ACLs on a shared cluster); a typed format that executes nothing is issue 11's.

>>> from streams.signals.base import DeviceState
>>> decode_device(b"not a snapshot") is None
True
"""

from __future__ import annotations

import pickle
import zlib

from streams.signals.base import DeviceState

__all__ = ["CHECKPOINT_VERSION", "decode_device", "encode_device"]

CHECKPOINT_VERSION = 2
"""Version of the changelog records (2: the signals' state by signal name; records of
version 1 are skipped, and those devices warm up again)."""


def encode_device(dev: DeviceState) -> bytes:
    blob = pickle.dumps((CHECKPOINT_VERSION, dev), protocol=pickle.HIGHEST_PROTOCOL)
    return zlib.compress(blob, 1)


def decode_device(value: bytes) -> DeviceState | None:
    try:
        version, dev = pickle.loads(zlib.decompress(value))  # our own changelog records
    except Exception:  # any undecodable record just means a cold start
        return None
    if version != CHECKPOINT_VERSION or not isinstance(dev, DeviceState):
        return None
    return dev
