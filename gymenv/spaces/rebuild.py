"""The inverse of `describe`: a space rebuilt, equal to the original, from its structured description
(what env_info carries), and values of it from their JSON. Clients use it (gymenv.client): no Django."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.spaces import Space


class UnknownSpace(ValueError):
    """A description this module cannot rebuild (a space type the codec describes only by its repr)."""


def from_description(desc: dict) -> Space:
    """The space `describe(space)` described."""
    kind = desc.get("type")
    build = _BUILDERS.get(kind) if isinstance(kind, str) else None
    if build is None:
        raise UnknownSpace(f"cannot rebuild a {kind} space from its description ({str(desc.get('repr'))[:80]}): "
                           "only gymnasium's own space types are described in full")
    return build(desc)


def _box(desc: dict) -> spaces.Box:
    dtype = np.dtype(desc["dtype"])
    shape = tuple(desc["shape"])
    return spaces.Box(low=_bound(desc["low"], dtype), high=_bound(desc["high"], dtype), shape=shape, dtype=dtype)


def _bound(value: Any, dtype: np.dtype) -> Any:
    """One side of a Box: a scalar, "-inf"/"inf", or nested lists of both (describe's summary)."""
    if isinstance(value, str):
        return float(value)
    if isinstance(value, bool):  # a bool Box's 0 or 1: Box takes no Python bool
        return int(value)
    if not isinstance(value, list):
        return value
    array = np.array(value, dtype=object)
    unbounded = np.vectorize(lambda v: isinstance(v, str))(array) if array.size else np.zeros(array.shape, bool)
    if not unbounded.any():
        return np.array(value, dtype=dtype)  # exact, integers of any size included
    array[unbounded] = np.vectorize(float)(array[unbounded])
    # A float Box holds infinities in its own dtype; gymnasium turns an integer Box's into the dtype's limits.
    return array.astype(dtype if dtype.kind == "f" else np.float64)


def _discrete(desc: dict) -> spaces.Discrete:
    return spaces.Discrete(desc["n"], start=desc.get("start", 0))


def _multi_discrete(desc: dict) -> spaces.MultiDiscrete:
    return spaces.MultiDiscrete(np.array(desc["nvec"]), dtype=np.dtype(desc["dtype"]), start=np.array(desc["start"]))


def _multi_binary(desc: dict) -> spaces.MultiBinary:
    n = desc["n"]
    return spaces.MultiBinary(np.array(n) if isinstance(n, list) else n)


def _tuple(desc: dict) -> spaces.Tuple:
    return spaces.Tuple([from_description(sub) for sub in desc["spaces"]])


def _dict(desc: dict) -> spaces.Dict:
    return spaces.Dict({key: from_description(sub) for key, sub in desc["spaces"].items()})


def _one_of(desc: dict) -> spaces.OneOf:
    return spaces.OneOf([from_description(sub) for sub in desc["spaces"]])


def _sequence(desc: dict) -> spaces.Sequence:
    return spaces.Sequence(from_description(desc["feature_space"]), stack=desc["stack"])


def _graph(desc: dict) -> spaces.Graph:
    edges = desc["edge_space"]
    node_space, edge_space = from_description(desc["node_space"]), None if edges is None else from_description(edges)
    assert isinstance(node_space, spaces.Box | spaces.Discrete) and (
        edge_space is None or isinstance(edge_space, spaces.Box | spaces.Discrete))
    return spaces.Graph(node_space=node_space, edge_space=edge_space)


def _text(desc: dict) -> spaces.Text:
    return spaces.Text(max_length=desc["max_length"], min_length=desc["min_length"], charset=desc["charset"])


_BUILDERS: dict[str, Callable[[dict], Space]] = {
    "Box": _box, "Discrete": _discrete, "MultiDiscrete": _multi_discrete, "MultiBinary": _multi_binary,
    "Tuple": _tuple, "Dict": _dict, "OneOf": _one_of, "Sequence": _sequence, "Graph": _graph, "Text": _text,
}


def value_from_json(space: Space, data: Any) -> Any:
    """An observation as the server sent it (plain JSON, or a png/npy encoded part) as the value gymnasium
    would give: numpy arrays of the space's dtype, tuples, dicts. Unlike decoding an action it checks
    nothing: an env may return observations outside its own bounds, and the client must see them."""
    if isinstance(data, dict) and "encoding" in data and not isinstance(space, spaces.Dict | spaces.Graph):
        return decoded(data)
    if isinstance(space, spaces.Box | spaces.MultiBinary | spaces.MultiDiscrete):
        array = np.array(data, dtype=object if space.dtype.kind == "f" else None)
        if space.dtype.kind == "f":
            array[array == None] = np.nan  # noqa: E711 - non-finite floats travel as null
        return array.astype(space.dtype)
    if isinstance(space, spaces.Discrete):
        return space.dtype.type(data) if space.dtype is not None else np.int64(data)
    if isinstance(space, spaces.Tuple):
        return tuple(value_from_json(sub, item) for sub, item in zip(space.spaces, data, strict=True))
    if isinstance(space, spaces.Dict):
        return {key: value_from_json(sub, data[str(key)]) for key, sub in space.spaces.items()}
    if isinstance(space, spaces.OneOf):
        index, item = data
        return np.int64(index), value_from_json(space.spaces[index], item)
    from gymenv.spaces import decode  # Sequence, Graph, Text: the codec's strict decoding builds them

    return decode(space, data)


def decoded(part: dict) -> np.ndarray:
    """An encoded observation part, {"encoding": "npy"|"png", "data", "shape", "dtype"}, as its array."""
    data = base64.b64decode(part["data"])
    if part["encoding"] == "npy":
        return np.load(io.BytesIO(data), allow_pickle=False)
    if part["encoding"] == "png":
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(data))).reshape(part["shape"]).astype(part["dtype"])
    raise ValueError(f"unknown observation encoding {str(part['encoding'])[:40]!r}")
