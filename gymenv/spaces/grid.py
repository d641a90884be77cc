"""Fixed-shape numeric arrays with per-element bounds: the phrases, schemas and strict decoding they share."""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from gymenv.spaces.messages import Refusal, json_kind


@dataclass(frozen=True, slots=True)
class Grid:
    """An array of fixed shape whose every element has inclusive bounds.

    Float bounds are float64 with infinities clamped to the dtype's largest finite value, because a
    JSON number beyond it would overflow to inf when cast: so every valid action is a finite number
    within [low, high], and the schema can say exactly that.
    """

    shape: tuple[int, ...]
    dtype: np.dtype
    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, shape: tuple[int, ...], dtype: Any, low: Any, high: Any) -> "Grid":
        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            limit = _float_limit(dtype)
            low = np.maximum(np.asarray(low, np.float64), -limit)
            high = np.minimum(np.asarray(high, np.float64), limit)
        return cls(tuple(shape), dtype, np.broadcast_to(low, shape), np.broadcast_to(high, shape))


_JSON_TYPES = {"f": (int, float), "i": (int,), "u": (int,), "b": (bool,)}
_NOUNS = {"f": "number", "i": "integer", "u": "integer", "b": "boolean"}


def _float_limit(dtype: np.dtype) -> float:
    # Casting to float64 happens first, so a wider float can't hold more than float64 does.
    return float(min(np.finfo(dtype).max, np.finfo(np.float64).max))


def _grid_bounds(grid: Grid, lo: Any, hi: Any) -> str:
    kind = grid.dtype.kind
    if kind == "b":
        return "" if lo != hi else f" (always {json.dumps(bool(lo))})"
    if kind != "f":
        return f" {int(lo)}..{int(hi)}"
    limit = _float_limit(grid.dtype)
    if -limit < lo and hi < limit:
        return f" in [{float(lo)!r}, {float(hi)!r}]"
    sides = []
    if lo > -limit:
        sides.append(f">= {float(lo)!r}")
    if hi < limit:
        sides.append(f"<= {float(hi)!r}")
    return " " + " ".join([*sides, f"within {grid.dtype} range"])


def _grid_leaf(grid: Grid, index: tuple) -> str:
    noun = _NOUNS[grid.dtype.kind]
    article = "an" if noun[0] == "i" else "a"
    return f"{article} {noun}{_grid_bounds(grid, grid.low[index].item(), grid.high[index].item())}"


def grid_phrase(grid: Grid, depth: int = 0) -> str:
    """What the grid (or, at `depth`, one of its sub-arrays) holds, in words."""
    shape = grid.shape[depth:]
    if not shape:
        return _grid_leaf(grid, ())
    count = f"a list of {shape[0]}" if len(shape) == 1 else f"a {'x'.join(map(str, shape))} nested list of"
    noun = _NOUNS[grid.dtype.kind] + ("" if shape == (1,) else "s")
    bounds = ""
    if depth == 0 and grid.low.size:
        uniform = grid.low.min() == grid.low.max() and grid.high.min() == grid.high.max()
        bounds = _grid_bounds(grid, grid.low.flat[0], grid.high.flat[0]) if uniform else " with per-element bounds"
    return f"{count} {noun}{bounds}"


def grid_schema(grid: Grid) -> dict:
    """The JSON Schema of the grid: nested arrays of exact lengths, each element within its bounds."""
    return _bounds_schema(grid.dtype.kind, grid.low, grid.high)


def _bounds_schema(kind: str, low: np.ndarray, high: np.ndarray) -> dict:
    if low.ndim == 0:
        return _leaf_schema(kind, low.item(), high.item())
    k = len(low)
    node: dict[str, Any] = {"type": "array", "minItems": k, "maxItems": k}
    if k and (low == low[:1]).all() and (high == high[:1]).all():
        node["items"] = _bounds_schema(kind, low[0], high[0])
    elif k:
        node["prefixItems"] = [_bounds_schema(kind, low[i], high[i]) for i in range(k)]
        node["items"] = False
    return node


def _leaf_schema(kind: str, lo: Any, hi: Any) -> dict:
    if kind == "b":
        return {"type": "boolean"} if lo != hi else {"const": bool(lo)}
    if kind == "f":
        return {"type": "number", "minimum": float(lo), "maximum": float(hi)}
    return {"type": "integer", "minimum": int(lo), "maximum": int(hi)}


def grid_decode(grid: Grid, data: Any, path: tuple) -> np.ndarray:
    """Client JSON as an array of the grid's dtype, without coercion; Refusal otherwise."""
    _grid_check(grid, data, path, ())
    try:
        raw = np.array(data, dtype=np.float64 if grid.dtype.kind == "f" else grid.dtype)
    except OverflowError:  # an int beyond the dtype (or beyond float64)
        raise _grid_outside(grid, data, path, _first_outside(grid, data)) from None
    inside = (raw >= grid.low) & (raw <= grid.high)
    if not inside.all():
        index = tuple(int(i) for i in np.unravel_index(int(np.argmin(inside)), inside.shape))
        raise _grid_outside(grid, data, path, index)
    return raw.astype(grid.dtype, copy=False)


def _grid_check(grid: Grid, data: Any, path: tuple, index: tuple) -> None:
    """Exact nesting and JSON types, before numpy gets a chance to coerce anything."""
    depth, types = len(index), _JSON_TYPES[grid.dtype.kind]
    if depth == len(grid.shape):
        if type(data) not in types:
            raise Refusal(path + index, _grid_leaf(grid, index), data, json_kind(data))
        return
    if type(data) is not list or len(data) != grid.shape[depth]:
        raise Refusal(path + index, grid_phrase(grid, depth), data, json_kind(data))
    if depth + 1 == len(grid.shape) and all(type(item) in types for item in data):
        return
    for i, item in enumerate(data):
        _grid_check(grid, item, path, index + (i,))


def _first_outside(grid: Grid, data: Any) -> tuple:
    # Python comparisons: the value may be an int no numpy dtype can hold.
    return next(
        index
        for index in np.ndindex(grid.shape)
        if not grid.low[index].item() <= _at(data, index) <= grid.high[index].item()
    )


def _grid_outside(grid: Grid, data: Any, path: tuple, index: tuple) -> Refusal:
    return Refusal(path + index, _grid_leaf(grid, index), _at(data, index))


def _at(data: Any, index: tuple) -> Any:
    for i in index:
        data = data[i]
    return data
