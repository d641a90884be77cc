"""JSON codec for every Gymnasium space: describe it, give its JSON Schema, encode values, decode actions strictly."""

import base64
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.spaces import GraphInstance, Space
from gymnasium.vector.utils import concatenate, create_empty_array, iterate

_PREVIEW = 80  # characters of a client value echoed back in an error
_SPACE_PREVIEW = 160
_LONG_PHRASE = 200  # longer descriptions of nested spaces fall back to their short form
_CHARSET_PREVIEW = 40
_MAX_DEPTH = 32  # to_json nesting
_BYTES_PREVIEW = 96


class ActionError(ValueError):
    """Raised by decode(); str(err) is a client-facing sentence saying what the space expects."""


class _Refusal(Exception):
    """Where decoding failed and why; decode() turns it into one ActionError sentence."""

    def __init__(self, path: tuple, expected: str, value: Any, got: str | None = None):
        super().__init__(expected)
        self.path, self.expected, self.value, self.got = path, expected, value, got


# --- public API ----------------------------------------------------------------------------


def describe(space: Space) -> dict:
    """The space as strict JSON: its type, its parameters (sub-spaces nested) and its repr."""
    return {"type": type(space).__name__, **_codec(space).describe(space), "repr": str(space)}


def json_schema(space: Space) -> dict:
    """A JSON Schema (draft 2020-12) met by exactly the JSON that decode() accepts, Graph links aside."""
    return {**_codec(space).schema(space), "description": _phrase(space)}


def encode(space: Space, value: Any) -> Any:
    """A value of the space (e.g. an observation) as strict JSON; non-finite floats become None."""
    return _codec(space).encode(space, value)


def decode(space: Space, data: Any) -> Any:
    """Client JSON as a value `space.contains`, without coercion; ActionError otherwise."""
    try:
        value = _codec(space).decode(space, data, ())
    except _Refusal as refusal:
        raise ActionError(_sentence(space, data, refusal)) from None
    # The codec's own checks should imply this; contains() is gymnasium's word and the env relies on it.
    if not space.contains(value):
        raise ActionError(_sentence(space, data, _Refusal((), _phrase(space), data)))
    return value


def to_json(obj: Any) -> Any:
    """Anything an env puts in `info`, as strict JSON; never raises."""
    return _to_json(obj, 0)


# --- dispatch ------------------------------------------------------------------------------


class _Codec:
    """The fallback for space types gymnasium may add: its own (batched) JSON API, checked by contains()."""

    def describe(self, space: Space) -> dict:
        return {}

    def schema(self, space: Space) -> dict:
        return {}

    def phrase(self, space: Space) -> str:
        return f"a value of {_clip(str(space), _SPACE_PREVIEW)}"

    def encode(self, space: Space, value: Any) -> Any:
        return to_json(space.to_jsonable([value])[0])

    def decode(self, space: Space, data: Any, path: tuple) -> Any:
        try:
            value = space.from_jsonable([data])[0]
        except Exception:  # an unknown space's from_jsonable may fail any way on bad input
            raise _Refusal(path, self.phrase(space), data) from None
        if not space.contains(value):
            raise _Refusal(path, self.phrase(space), data)
        return value


def _codec(space: Space) -> _Codec:
    for cls in type(space).__mro__:
        if (codec := _CODECS.get(cls)) is not None:
            return codec
    return _FALLBACK


def _schema(space: Space) -> dict:
    return _codec(space).schema(space)


def _phrase(space: Space) -> str:
    return _codec(space).phrase(space)


def _decode(space: Space, data: Any, path: tuple) -> Any:
    return _codec(space).decode(space, data, path)


# --- fixed-shape numeric arrays: Box, MultiDiscrete, MultiBinary, Discrete ------------------


@dataclass(frozen=True, slots=True)
class _Grid:
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
    def of(cls, shape: tuple[int, ...], dtype: Any, low: Any, high: Any) -> "_Grid":
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


def _grid_bounds(grid: _Grid, lo: Any, hi: Any) -> str:
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


def _grid_leaf(grid: _Grid, index: tuple) -> str:
    noun = _NOUNS[grid.dtype.kind]
    article = "an" if noun[0] == "i" else "a"
    return f"{article} {noun}{_grid_bounds(grid, grid.low[index].item(), grid.high[index].item())}"


def _grid_phrase(grid: _Grid, depth: int = 0) -> str:
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


def _grid_decode(grid: _Grid, data: Any, path: tuple) -> np.ndarray:
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


def _grid_check(grid: _Grid, data: Any, path: tuple, index: tuple) -> None:
    """Exact nesting and JSON types, before numpy gets a chance to coerce anything."""
    depth, types = len(index), _JSON_TYPES[grid.dtype.kind]
    if depth == len(grid.shape):
        if type(data) not in types:
            raise _Refusal(path + index, _grid_leaf(grid, index), data, _kind(data))
        return
    if type(data) is not list or len(data) != grid.shape[depth]:
        raise _Refusal(path + index, _grid_phrase(grid, depth), data, _kind(data))
    if depth + 1 == len(grid.shape) and all(type(item) in types for item in data):
        return
    for i, item in enumerate(data):
        _grid_check(grid, item, path, index + (i,))


def _first_outside(grid: _Grid, data: Any) -> tuple:
    # Python comparisons: the value may be an int no numpy dtype can hold.
    return next(
        index
        for index in np.ndindex(grid.shape)
        if not grid.low[index].item() <= _at(data, index) <= grid.high[index].item()
    )


def _grid_outside(grid: _Grid, data: Any, path: tuple, index: tuple) -> _Refusal:
    return _Refusal(path + index, _grid_leaf(grid, index), _at(data, index))


def _at(data: Any, index: tuple) -> Any:
    for i in index:
        data = data[i]
    return data


def _encode_array(value: Any) -> Any:
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            out = array.astype(object)
            out[~finite] = None
            return out.tolist()
    return array.tolist()


class _GridCodec(_Codec):
    def grid(self, space: Any) -> _Grid:
        raise NotImplementedError

    def schema(self, space: Space) -> dict:
        grid = self.grid(space)
        return _bounds_schema(grid.dtype.kind, grid.low, grid.high)

    def phrase(self, space: Space) -> str:
        return _grid_phrase(self.grid(space))

    def encode(self, space: Space, value: Any) -> Any:
        return _encode_array(value)

    def decode(self, space: Space, data: Any, path: tuple) -> Any:
        return _grid_decode(self.grid(space), data, path)


class _DiscreteCodec(_GridCodec):
    def grid(self, space: spaces.Discrete) -> _Grid:
        return _Grid.of((), space.dtype, space.start, space.start + space.n - 1)

    def describe(self, space: spaces.Discrete) -> dict:
        return {"n": int(space.n), "start": int(space.start)}

    def encode(self, space: Space, value: Any) -> Any:
        return int(value)

    def decode(self, space: spaces.Discrete, data: Any, path: tuple) -> Any:
        if type(data) is not int:
            raise _Refusal(path, self.phrase(space), data, _kind(data))
        start = int(space.start)
        if not start <= data < start + int(space.n):
            raise _Refusal(path, self.phrase(space), data)
        return space.from_jsonable([data])[0]


class _BoxCodec(_GridCodec):
    def grid(self, space: spaces.Box) -> _Grid:
        return _Grid.of(space.shape, space.dtype, space.low, space.high)

    def describe(self, space: spaces.Box) -> dict:
        return {
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _bound_list(space.low, space.bounded_below),
            "high": _bound_list(space.high, space.bounded_above),
        }


def _bound_list(bound: np.ndarray, bounded: np.ndarray) -> Any:
    # bounded_* rather than isfinite: an integer Box built with -inf stores the dtype minimum.
    out = bound.astype(object)
    out[~bounded] = None
    return out.tolist()


class _MultiDiscreteCodec(_GridCodec):
    def grid(self, space: spaces.MultiDiscrete) -> _Grid:
        return _Grid.of(space.shape, space.dtype, space.start, space.start + space.nvec - 1)

    def describe(self, space: spaces.MultiDiscrete) -> dict:
        return {"nvec": space.nvec.tolist(), "start": space.start.tolist(), "dtype": str(space.dtype)}


class _MultiBinaryCodec(_GridCodec):
    def grid(self, space: spaces.MultiBinary) -> _Grid:
        return _Grid.of(space.shape, space.dtype, 0, 1)

    def describe(self, space: spaces.MultiBinary) -> dict:
        return {"n": to_json(space.n), "shape": list(space.shape)}


# --- strings ---------------------------------------------------------------------------------


class _TextCodec(_Codec):
    def describe(self, space: spaces.Text) -> dict:
        return {"min_length": space.min_length, "max_length": space.max_length, "charset": space.characters}

    def schema(self, space: spaces.Text) -> dict:
        chars = f"[{_char_class(space.characters)}]*" if space.characters else ""
        # `$` alone also matches before a final newline in Python's re; the lookahead pins the true end.
        pattern = f"^{chars}$(?!\\n)"
        return {"type": "string", "minLength": space.min_length, "maxLength": space.max_length, "pattern": pattern}

    def phrase(self, space: spaces.Text) -> str:
        charset = json.dumps(_clip(space.characters, _CHARSET_PREVIEW), ensure_ascii=False)
        return f"a string of {space.min_length} to {space.max_length} characters from {charset}"

    def encode(self, space: Space, value: Any) -> Any:
        return str(value)

    def decode(self, space: spaces.Text, data: Any, path: tuple) -> Any:
        if type(data) is not str:
            raise _Refusal(path, self.phrase(space), data, _kind(data))
        if not space.min_length <= len(data) <= space.max_length:
            raise _Refusal(path, self.phrase(space), data, f"a string of {len(data)} characters")
        charset = space.character_set
        for i, char in enumerate(data):
            if char not in charset:
                got = f"{json.dumps(char, ensure_ascii=False)} at position {i}"
                raise _Refusal(path, self.phrase(space), data, got)
        return data


def _char_class(chars: str) -> str:
    """A regex character class body, valid both in Python's re and in ECMA-262 (JSON Schema's dialect)."""
    points, runs = sorted(set(map(ord, chars))), []
    for point in points:
        if runs and point == runs[-1][1] + 1:
            runs[-1][1] = point
        else:
            runs.append([point, point])
    parts = []
    for first, last in runs:
        if last - first >= 2:
            parts.append(f"{_regex_char(first)}-{_regex_char(last)}")
        else:
            parts.extend(_regex_char(p) for p in range(first, last + 1))
    return "".join(parts)


def _regex_char(point: int) -> str:
    char = chr(point)
    if char.isascii() and char.isalnum():
        return char
    # \uXXXX is read the same by both dialects; astral characters have no such common escape.
    return f"\\u{point:04x}" if point <= 0xFFFF else char


# --- composites ------------------------------------------------------------------------------


class _TupleCodec(_Codec):
    def describe(self, space: spaces.Tuple) -> dict:
        return {"spaces": [describe(sub) for sub in space.spaces]}

    def schema(self, space: spaces.Tuple) -> dict:
        k = len(space.spaces)
        items = [_schema(sub) for sub in space.spaces]
        return {"type": "array", "prefixItems": items, "items": False, "minItems": k, "maxItems": k}

    def phrase(self, space: spaces.Tuple) -> str:
        k = len(space.spaces)
        full = f"a list [{', '.join(_phrase(sub) for sub in space.spaces)}]"
        return _shortest(full, f"a list of {k} item{'s' * (k != 1)}")

    def encode(self, space: spaces.Tuple, value: Any) -> Any:
        return [encode(sub, item) for sub, item in zip(space.spaces, value, strict=True)]

    def decode(self, space: spaces.Tuple, data: Any, path: tuple) -> Any:
        if type(data) is not list or len(data) != len(space.spaces):
            raise _Refusal(path, self.phrase(space), data, _kind(data))
        return tuple(_decode(sub, item, path + (i,)) for i, (sub, item) in enumerate(zip(space.spaces, data)))


class _DictCodec(_Codec):
    def describe(self, space: spaces.Dict) -> dict:
        return {"spaces": {str(key): describe(sub) for key, sub in space.spaces.items()}}

    def schema(self, space: spaces.Dict) -> dict:
        return {
            "type": "object",
            "properties": {str(key): _schema(sub) for key, sub in space.spaces.items()},
            "required": [str(key) for key in space.spaces],
            "additionalProperties": False,
        }

    def phrase(self, space: spaces.Dict) -> str:
        parts = ", ".join(f"{json.dumps(str(key))}: {_phrase(sub)}" for key, sub in space.spaces.items())
        keys = ", ".join(json.dumps(str(key)) for key in space.spaces)
        return _shortest(f"an object {{{parts}}}", f"an object with keys {_clip(keys, _LONG_PHRASE)}")

    def encode(self, space: spaces.Dict, value: Any) -> Any:
        return {str(key): encode(sub, value[key]) for key, sub in space.spaces.items()}

    def decode(self, space: spaces.Dict, data: Any, path: tuple) -> Any:
        if type(data) is not dict:
            raise _Refusal(path, self.phrase(space), data, _kind(data))
        keys = {str(key): key for key in space.spaces}
        for name in data:
            if name not in keys:
                raise _Refusal(path, self.phrase(space), data, f"unexpected key {_preview(name)}")
        for name in keys:
            if name not in data:
                raise _Refusal(path, self.phrase(space), data, f"no key {json.dumps(name)}")
        return {key: _decode(space.spaces[key], data[name], path + (name,)) for name, key in keys.items()}


class _OneOfCodec(_Codec):
    def describe(self, space: spaces.OneOf) -> dict:
        return {"spaces": [describe(sub) for sub in space.spaces]}

    def schema(self, space: spaces.OneOf) -> dict:
        pair = {"type": "array", "items": False, "minItems": 2, "maxItems": 2}
        return {"oneOf": [{**pair, "prefixItems": [{"const": i}, _schema(sub)]} for i, sub in enumerate(space.spaces)]}

    def phrase(self, space: spaces.OneOf) -> str:
        full = " or ".join(f"[{i}, {_phrase(sub)}]" for i, sub in enumerate(space.spaces))
        head = f"a pair [index, value] with index 0..{len(space.spaces) - 1} choosing the sub-space"
        return _shortest(f"a pair [index, value]: {full}", head)

    def encode(self, space: spaces.OneOf, value: Any) -> Any:
        index, item = value
        return [int(index), encode(space.spaces[index], item)]

    def decode(self, space: spaces.OneOf, data: Any, path: tuple) -> Any:
        if type(data) is not list or len(data) != 2:
            raise _Refusal(path, self.phrase(space), data, _kind(data))
        index, item = data
        if type(index) is not int or not 0 <= index < len(space.spaces):
            expected = f"an integer 0..{len(space.spaces) - 1} choosing the sub-space"
            raise _Refusal(path + (0,), expected, index, None if type(index) is int else _kind(index))
        return np.int64(index), _decode(space.spaces[index], item, path + (1,))


class _SequenceCodec(_Codec):
    def describe(self, space: spaces.Sequence) -> dict:
        return {"feature_space": describe(space.feature_space), "stack": bool(space.stack)}

    def schema(self, space: spaces.Sequence) -> dict:
        return {"type": "array", "items": _schema(space.feature_space)}

    def phrase(self, space: spaces.Sequence) -> str:
        return f"a list of any length, each item {_phrase(space.feature_space)}"

    def encode(self, space: spaces.Sequence, value: Any) -> Any:
        if not space.stack:
            return [encode(space.feature_space, item) for item in value]
        if isinstance(value, np.ndarray):  # a stacked array's rows are its items
            return _encode_array(value)
        return [encode(space.feature_space, item) for item in iterate(space.stacked_feature_space, value)]

    def decode(self, space: spaces.Sequence, data: Any, path: tuple) -> Any:
        if type(data) is not list:
            raise _Refusal(path, self.phrase(space), data, _kind(data))
        if space.stack:
            return _decode_stacked(space.feature_space, data, path)
        return tuple(_decode(space.feature_space, item, path + (i,)) for i, item in enumerate(data))


def _decode_stacked(space: Space, data: list, path: tuple) -> Any:
    items = [_decode(space, item, path + (i,)) for i, item in enumerate(data)]
    empty = create_empty_array(space, len(items))
    return concatenate(space, items, empty) if items else empty


class _GraphCodec(_Codec):
    """JSON keys as gymnasium's Graph.to_jsonable, without its one-element batch wrapper around nodes and edges."""

    def describe(self, space: spaces.Graph) -> dict:
        edges = space.edge_space
        return {"node_space": describe(space.node_space), "edge_space": None if edges is None else describe(edges)}

    def schema(self, space: spaces.Graph) -> dict:
        properties: dict[str, Any] = {"nodes": {"type": "array", "items": _schema(space.node_space)}}
        schema = {"type": "object", "properties": properties, "required": ["nodes"], "additionalProperties": False}
        if space.edge_space is not None:
            pair = {"type": "integer", "minimum": 0}
            properties["edges"] = {"type": "array", "items": _schema(space.edge_space)}
            properties["edge_links"] = {"type": "array", "items": {"type": "array", "items": pair, "minItems": 2, "maxItems": 2}}
            schema["dependentRequired"] = {"edges": ["edge_links"], "edge_links": ["edges"]}
        return schema

    def phrase(self, space: spaces.Graph) -> str:
        if space.edge_space is None:
            return f'an object {{"nodes": [node, ...]}}, each node {_phrase(space.node_space)}'
        return (
            'an object {"nodes": [node, ...], "edges": [edge, ...], "edge_links": [[from, to], ...]} '
            f"(edges optional), each node {_phrase(space.node_space)}, each edge {_phrase(space.edge_space)}"
        )

    def encode(self, space: spaces.Graph, value: GraphInstance) -> Any:
        out = {"nodes": _encode_array(value.nodes)}
        if value.edges is not None and value.edge_links is not None:
            out["edges"] = _encode_array(value.edges)
            out["edge_links"] = np.asarray(value.edge_links).tolist()
        return out

    def decode(self, space: spaces.Graph, data: Any, path: tuple) -> Any:
        allowed = ("nodes",) if space.edge_space is None else ("nodes", "edges", "edge_links")
        if type(data) is not dict:
            raise _Refusal(path, self.phrase(space), data, _kind(data))
        for name in data:
            if name not in allowed:
                raise _Refusal(path, self.phrase(space), data, f"unexpected key {_preview(name)}")
        if "nodes" not in data or ("edges" in data) != ("edge_links" in data):
            missing = next(name for name in allowed if name not in data)
            raise _Refusal(path, self.phrase(space), data, f"no key {json.dumps(missing)}")
        nodes = _decode_list(space.node_space, data["nodes"], path + ("nodes",))
        if "edges" not in data:
            return GraphInstance(nodes, None, None)
        edges = _decode_list(space.edge_space, data["edges"], path + ("edges",))
        links = _Grid.of((len(edges), 2), np.int32, 0, len(nodes) - 1)
        return GraphInstance(nodes, edges, _grid_decode(links, data["edge_links"], path + ("edge_links",)))


def _decode_list(space: Space, data: Any, path: tuple) -> Any:
    if type(data) is not list:
        raise _Refusal(path, f"a list, each item {_phrase(space)}", data, _kind(data))
    return _decode_stacked(space, data, path)


_FALLBACK = _Codec()
_CODECS: dict[type, _Codec] = {
    spaces.Discrete: _DiscreteCodec(),
    spaces.Box: _BoxCodec(),
    spaces.MultiDiscrete: _MultiDiscreteCodec(),
    spaces.MultiBinary: _MultiBinaryCodec(),
    spaces.Text: _TextCodec(),
    spaces.Tuple: _TupleCodec(),
    spaces.Dict: _DictCodec(),
    spaces.OneOf: _OneOfCodec(),
    spaces.Sequence: _SequenceCodec(),
    spaces.Graph: _GraphCodec(),
}


# --- messages ------------------------------------------------------------------------------


def _sentence(space: Space, data: Any, refusal: _Refusal) -> str:
    where = f"at {_path(refusal.path)}: " if refusal.path else ""
    # At the top level the value is already echoed; deeper down, show the part that was refused.
    got = refusal.got or (_preview(refusal.value) if refusal.path else None)
    tail = f", got {got}" if got else ""
    space_text = _clip(" ".join(str(space).split()), _SPACE_PREVIEW)  # array reprs span lines
    return f"action {_preview(data)} is not in {space_text}: {where}expected {refusal.expected}{tail}"


def _path(path: tuple) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f"[{_preview(step)}]" for step in path)


def _shortest(full: str, short: str) -> str:
    return full if len(full) <= _LONG_PHRASE else short


def _kind(data: Any) -> str:
    match data:
        case bool():
            return "a boolean"
        case int():
            return "an integer"
        case float():
            return "a float"
        case str():
            return "a string"
        case None:
            return "null"
        case list():
            return f"a list of {len(data)} item{'s' * (len(data) != 1)}"
        case dict():
            return "an object"
    return f"a {type(data).__name__}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _preview(value: Any) -> str:
    return _clip(_render(value, _PREVIEW), _PREVIEW)


def _render(value: Any, budget: int) -> str:
    """JSON-like text of `value`, cut off after about `budget` characters however large or deep it is."""
    if budget <= 0:
        return "…"
    if isinstance(value, (list, tuple, dict)):
        return _render_container(value, budget)
    if isinstance(value, str):
        return json.dumps(value[:budget], ensure_ascii=False)
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return "<huge integer>"  # str() of a many-thousand-digit int raises
    if value is None or isinstance(value, (bool, int, float)):
        return json.dumps(value)
    return _safe_str(value, repr)[:budget]


def _render_container(value: list | tuple | dict, budget: int) -> str:
    is_dict = isinstance(value, dict)
    text, close = ("{", "}") if is_dict else ("[", "]")
    for i, item in enumerate(value.items() if is_dict else value):
        if len(text) >= budget:
            return text + "…" + close
        # Each child gets only what is left, so depth and work stay bounded by the budget.
        left = budget - len(text)
        part = f"{_render(item[0], left)}: {_render(item[1], left)}" if is_dict else _render(item, left)
        text += (", " if i else "") + part
    return text + close


# --- info dicts ----------------------------------------------------------------------------


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
            return _encode_array(obj)
        return _to_json(obj.tolist(), depth + 1)
    if isinstance(obj, Mapping):
        return {_key(key): _to_json(value, depth + 1) for key, value in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_to_json(item, depth + 1) for item in obj]
    if isinstance(obj, np.generic):
        return _to_json(obj.item(), depth + 1)
    return _safe_str(obj, str)


def _key(key: Any) -> str:
    return key if isinstance(key, str) else _safe_str(key, str)


def _base64(head: bytes, size: int) -> str:
    text = base64.b64encode(head).decode("ascii")
    return text if size <= len(head) else f"{text}…({size} bytes)"


def _safe_str(obj: Any, how: Any) -> str:
    try:
        return how(obj)
    except Exception:  # a broken __str__/__repr__ must not break the step that carries it
        return f"<{type(obj).__name__}>"
