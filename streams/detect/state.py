"""Plain state: what a model's checkpoint is made of, read back with its types checked.

Every model and every signal state converts itself to a *plain* dict (``to_state``) of
floats, ints, bools, strings, lists and dicts of those, and is rebuilt from one
(``from_state``, a classmethod of the class the code chose: never a class named by the
record). A numpy array is ``{"dtype": "float64", "shape": [...], "data": [...]}``. The
readers below take one field each and raise :class:`StateError` naming the field, the type
expected and the value found, so a forged or corrupt record is refused, never half-loaded.

>>> read_float({"mean": 2}, "mean")
2.0
>>> read_int({"n": True}, "n")
Traceback (most recent call last):
...
streams.detect.state.StateError: n: expected an int, got True
>>> array_from_state(array_to_state(np.eye(2)), "cov").tolist()
[[1.0, 0.0], [0.0, 1.0]]
"""

from __future__ import annotations

import math
from typing import Any, Protocol, Self

import numpy as np

__all__ = [
    "PlainState",
    "State",
    "StateError",
    "array_from_state",
    "array_to_state",
    "read_bool",
    "read_dict",
    "read_float",
    "read_floats",
    "read_int",
    "read_ints",
    "read_opt_dict",
    "read_opt_float",
    "read_str",
    "read_strs",
    "read_value",
]

State = dict[str, Any]
"""A plain state: JSON-able values only."""

_MAX_ARRAY = 1 << 20  # elements: no window model comes near; a forged shape cannot allocate


class StateError(ValueError):
    """A checkpointed state that is not what the format says (missing field, wrong type)."""


class PlainState(Protocol):
    """A state class that round-trips through a plain dict."""

    def to_state(self) -> State: ...

    @classmethod
    def from_state(cls, d: State) -> Self: ...


def _get(d: Any, key: str) -> Any:
    if not isinstance(d, dict):
        msg = f"{key}: expected a field of an object, got {type(d).__name__}"
        raise StateError(msg)
    if key not in d:
        msg = f"{key}: missing"
        raise StateError(msg)
    return d[key]


def _wrong(key: str, expected: str, value: Any) -> StateError:
    shown = repr(value)
    return StateError(f"{key}: expected {expected}, got {shown[:60]}")


def _as_float(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, float | int):
        raise _wrong(key, "a number", value)
    return float(value)


def read_value(d: Any, key: str) -> Any:
    """Field ``key`` of ``d``, whatever it holds (the caller checks it); missing: an error."""
    return _get(d, key)


def read_float(d: Any, key: str) -> float:
    """Field ``key`` of ``d``, a number (NaN and infinities allowed: states hold them)."""
    return _as_float(_get(d, key), key)


def read_opt_float(d: Any, key: str) -> float | None:
    """Field ``key`` of ``d``: a number or null."""
    value = _get(d, key)
    return None if value is None else _as_float(value, key)


def read_int(d: Any, key: str) -> int:
    """Field ``key`` of ``d``, an int (not a bool, not a float)."""
    value = _get(d, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(key, "an int", value)
    return value


def read_bool(d: Any, key: str) -> bool:
    """Field ``key`` of ``d``, a bool."""
    value = _get(d, key)
    if not isinstance(value, bool):
        raise _wrong(key, "a bool", value)
    return value


def read_str(d: Any, key: str) -> str:
    """Field ``key`` of ``d``, a string."""
    value = _get(d, key)
    if not isinstance(value, str):
        raise _wrong(key, "a string", value)
    return value


def read_dict(d: Any, key: str) -> State:
    """Field ``key`` of ``d``, an object (with string keys, as JSON's)."""
    value = _get(d, key)
    if not isinstance(value, dict):
        raise _wrong(key, "an object", value)
    return value


def read_opt_dict(d: Any, key: str) -> State | None:
    """Field ``key`` of ``d``: an object or null."""
    return None if _get(d, key) is None else read_dict(d, key)


def _list(d: Any, key: str, length: int | None) -> list[Any]:
    value = _get(d, key)
    if not isinstance(value, list):
        raise _wrong(key, "a list", value)
    if length is not None and len(value) != length:
        msg = f"{key}: expected {length} items, got {len(value)}"
        raise StateError(msg)
    return value


def read_floats(d: Any, key: str, length: int | None = None) -> list[float]:
    """Field ``key`` of ``d``, a list of numbers (of ``length`` items when given)."""
    return [_as_float(v, key) for v in _list(d, key, length)]


def read_ints(d: Any, key: str, length: int | None = None) -> list[int]:
    """Field ``key`` of ``d``, a list of ints (of ``length`` items when given)."""
    out = _list(d, key, length)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _wrong(key, "a list of ints", v)
    return out


def read_strs(d: Any, key: str) -> tuple[str, ...]:
    """Field ``key`` of ``d``, a list of strings."""
    out = _list(d, key, None)
    for v in out:
        if not isinstance(v, str):
            raise _wrong(key, "a list of strings", v)
    return tuple(out)


def array_to_state(a: np.ndarray) -> State:
    """A float64 array as a plain dict (dtype, shape, row-major data)."""
    a = np.asarray(a, dtype=np.float64)
    return {"dtype": "float64", "shape": list(a.shape), "data": a.ravel().tolist()}


def array_from_state(value: Any, key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The array :func:`array_to_state` wrote (of ``shape`` when given; -1: any length)."""
    where = f"{key}.shape"
    if read_str(value, "dtype") != "float64":
        raise _wrong(f"{key}.dtype", '"float64"', value["dtype"])  # noqa: EM102
    dims = tuple(read_ints(value, "shape"))
    if any(n < 0 for n in dims) or math.prod(dims) > _MAX_ARRAY:
        raise _wrong(where, "small non-negative sizes", list(dims))
    if shape is not None and (
        len(dims) != len(shape) or any(s not in (-1, n) for s, n in zip(shape, dims, strict=True))
    ):
        raise _wrong(where, str(list(shape)), list(dims))
    data = read_floats(value, "data", math.prod(dims))
    return np.array(data, dtype=np.float64).reshape(dims)
