"""Strict JSON from what envs hand back (`info` dicts, numpy scalars and arrays): non-finite floats become null."""

import base64
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

_MAX_DEPTH = 32  # to_json nesting
_BYTES_PREVIEW = 96


def to_json(obj: Any) -> Any:
    """Anything an env puts in `info`, as strict JSON; never raises."""
    return _to_json(obj, 0)


def encode_array(value: Any) -> Any:
    """A numeric array (or array-like) as nested lists; non-finite floats become None."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            out = array.astype(object)
            out[~finite] = None
            return out.tolist()
    return array.tolist()


def safe_str(obj: Any, how: Callable[[Any], str]) -> str:
    """`how(obj)` (str or repr), or the type's name if the object's own method raises."""
    try:
        return how(obj)
    except Exception:  # noqa: BLE001 - a broken __str__/__repr__ must not break the step that carries it
        return f"<{type(obj).__name__}>"


def _to_json(obj: Any, depth: int) -> Any:
    if obj is None or type(obj) in (str, int, bool):
        return obj
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return _base64(bytes(obj[:_BYTES_PREVIEW]), len(obj))
    if depth >= _MAX_DEPTH:
        return "…"
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "fiub" and obj.dtype.itemsize <= 8:
            return encode_array(obj)
        return _to_json(obj.tolist(), depth + 1)
    if isinstance(obj, Mapping):
        return {_key(key): _to_json(value, depth + 1) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_to_json(item, depth + 1) for item in obj]
    if isinstance(obj, np.generic):
        return _to_json(obj.item(), depth + 1)
    return safe_str(obj, str)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else safe_str(key, str)


def _base64(head: bytes, size: int) -> str:
    text = base64.b64encode(head).decode("ascii")
    return text if size <= len(head) else f"{text}…({size} bytes)"
