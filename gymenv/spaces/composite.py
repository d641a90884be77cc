"""Codecs of the spaces made of other spaces: Tuple, Dict, OneOf, Sequence, Graph."""

import json
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.spaces import GraphInstance, Space
from gymnasium.vector.utils import concatenate, create_empty_array, iterate

from gymenv.spaces.codec import Codec, codec_for, decode_at, describe, encode, phrase_of, schema_of
from gymenv.spaces.grid import Grid, grid_decode
from gymenv.spaces.info import encode_array
from gymenv.spaces.messages import LONG_PHRASE, Refusal, clip, json_kind, preview, shortest


@codec_for(spaces.Tuple)
class _TupleCodec(Codec[spaces.Tuple]):
    def describe(self, space: spaces.Tuple) -> dict:
        return {"spaces": [describe(sub) for sub in space.spaces]}

    def schema(self, space: spaces.Tuple) -> dict:
        k = len(space.spaces)
        items = [schema_of(sub) for sub in space.spaces]
        return {"type": "array", "prefixItems": items, "items": False, "minItems": k, "maxItems": k}

    def phrase(self, space: spaces.Tuple) -> str:
        k = len(space.spaces)
        full = f"a list [{', '.join(phrase_of(sub) for sub in space.spaces)}]"
        return shortest(full, f"a list of {k} item{'s' * (k != 1)}")

    def encode(self, space: spaces.Tuple, value: Any) -> Any:
        return [encode(sub, item) for sub, item in zip(space.spaces, value, strict=True)]

    def decode(self, space: spaces.Tuple, data: Any, path: tuple) -> Any:
        if type(data) is not list or len(data) != len(space.spaces):
            raise Refusal(path, self.phrase(space), data, json_kind(data))
        pairs = enumerate(zip(space.spaces, data, strict=True))
        return tuple(decode_at(sub, item, path + (i,)) for i, (sub, item) in pairs)


@codec_for(spaces.Dict)
class _DictCodec(Codec[spaces.Dict]):
    def describe(self, space: spaces.Dict) -> dict:
        return {"spaces": {str(key): describe(sub) for key, sub in space.spaces.items()}}

    def schema(self, space: spaces.Dict) -> dict:
        return {
            "type": "object",
            "properties": {str(key): schema_of(sub) for key, sub in space.spaces.items()},
            "required": [str(key) for key in space.spaces],
            "additionalProperties": False,
        }

    def phrase(self, space: spaces.Dict) -> str:
        parts = ", ".join(f"{json.dumps(str(key))}: {phrase_of(sub)}" for key, sub in space.spaces.items())
        keys = ", ".join(json.dumps(str(key)) for key in space.spaces)
        return shortest(f"an object {{{parts}}}", f"an object with keys {clip(keys, LONG_PHRASE)}")

    def encode(self, space: spaces.Dict, value: Any) -> Any:
        return {str(key): encode(sub, value[key]) for key, sub in space.spaces.items()}

    def decode(self, space: spaces.Dict, data: Any, path: tuple) -> Any:
        if type(data) is not dict:
            raise Refusal(path, self.phrase(space), data, json_kind(data))
        keys = {str(key): key for key in space.spaces}
        for name in data:
            if name not in keys:
                raise Refusal(path, self.phrase(space), data, f"unexpected key {preview(name)}")
        for name in keys:
            if name not in data:
                raise Refusal(path, self.phrase(space), data, f"no key {json.dumps(name)}")
        return {key: decode_at(space.spaces[key], data[name], path + (name,)) for name, key in keys.items()}


@codec_for(spaces.OneOf)
class _OneOfCodec(Codec[spaces.OneOf]):
    def describe(self, space: spaces.OneOf) -> dict:
        return {"spaces": [describe(sub) for sub in space.spaces]}

    def schema(self, space: spaces.OneOf) -> dict:
        pair = {"type": "array", "items": False, "minItems": 2, "maxItems": 2}
        return {"oneOf": [{**pair, "prefixItems": [{"const": i}, schema_of(sub)]}
                          for i, sub in enumerate(space.spaces)]}

    def phrase(self, space: spaces.OneOf) -> str:
        full = " or ".join(f"[{i}, {phrase_of(sub)}]" for i, sub in enumerate(space.spaces))
        head = f"a pair [index, value] with index 0..{len(space.spaces) - 1} choosing the sub-space"
        return shortest(f"a pair [index, value]: {full}", head)

    def encode(self, space: spaces.OneOf, value: Any) -> Any:
        index, item = value
        return [int(index), encode(space.spaces[index], item)]

    def decode(self, space: spaces.OneOf, data: Any, path: tuple) -> Any:
        if type(data) is not list or len(data) != 2:
            raise Refusal(path, self.phrase(space), data, json_kind(data))
        index, item = data
        if type(index) is not int or not 0 <= index < len(space.spaces):
            expected = f"an integer 0..{len(space.spaces) - 1} choosing the sub-space"
            raise Refusal(path + (0,), expected, index, None if type(index) is int else json_kind(index))
        return np.int64(index), decode_at(space.spaces[index], item, path + (1,))


@codec_for(spaces.Sequence)
class _SequenceCodec(Codec[spaces.Sequence]):
    def describe(self, space: spaces.Sequence) -> dict:
        return {"feature_space": describe(space.feature_space), "stack": bool(space.stack)}

    def schema(self, space: spaces.Sequence) -> dict:
        return {"type": "array", "items": schema_of(space.feature_space)}

    def phrase(self, space: spaces.Sequence) -> str:
        return f"a list of any length, each item {phrase_of(space.feature_space)}"

    def encode(self, space: spaces.Sequence, value: Any) -> Any:
        if not space.stack:
            return [encode(space.feature_space, item) for item in value]
        if isinstance(value, np.ndarray):  # a stacked array's rows are its items
            return encode_array(value)
        return [encode(space.feature_space, item) for item in iterate(space.stacked_feature_space, value)]

    def decode(self, space: spaces.Sequence, data: Any, path: tuple) -> Any:
        if type(data) is not list:
            raise Refusal(path, self.phrase(space), data, json_kind(data))
        if space.stack:
            return _decode_stacked(space.feature_space, data, path)
        return tuple(decode_at(space.feature_space, item, path + (i,)) for i, item in enumerate(data))


def _decode_stacked(space: Space, data: list, path: tuple) -> Any:
    items = [decode_at(space, item, path + (i,)) for i, item in enumerate(data)]
    empty = create_empty_array(space, len(items))
    # `empty` is None for a custom space, whose concatenate takes None: gymnasium annotates only the others.
    return concatenate(space, items, empty) if items else empty  # type: ignore[arg-type]


@codec_for(spaces.Graph)
class _GraphCodec(Codec[spaces.Graph]):
    """JSON keys as gymnasium's Graph.to_jsonable, without its one-element batch wrapper around nodes and edges."""

    def describe(self, space: spaces.Graph) -> dict:
        edges = space.edge_space
        return {"node_space": describe(space.node_space), "edge_space": None if edges is None else describe(edges)}

    def schema(self, space: spaces.Graph) -> dict:
        properties: dict[str, Any] = {"nodes": {"type": "array", "items": schema_of(space.node_space)}}
        schema = {"type": "object", "properties": properties, "required": ["nodes"], "additionalProperties": False}
        if space.edge_space is not None:
            pair = {"type": "integer", "minimum": 0}
            properties["edges"] = {"type": "array", "items": schema_of(space.edge_space)}
            link = {"type": "array", "items": pair, "minItems": 2, "maxItems": 2}
            properties["edge_links"] = {"type": "array", "items": link}
            schema["dependentRequired"] = {"edges": ["edge_links"], "edge_links": ["edges"]}
        return schema

    def phrase(self, space: spaces.Graph) -> str:
        if space.edge_space is None:
            return f'an object {{"nodes": [node, ...]}}, each node {phrase_of(space.node_space)}'
        return (
            'an object {"nodes": [node, ...], "edges": [edge, ...], "edge_links": [[from, to], ...]} '
            f"(edges optional), each node {phrase_of(space.node_space)}, each edge {phrase_of(space.edge_space)}"
        )

    def encode(self, space: spaces.Graph, value: GraphInstance) -> Any:
        out = {"nodes": encode_array(value.nodes)}
        if value.edges is not None and value.edge_links is not None:
            out["edges"] = encode_array(value.edges)
            out["edge_links"] = np.asarray(value.edge_links).tolist()
        return out

    def decode(self, space: spaces.Graph, data: Any, path: tuple) -> Any:
        allowed = ("nodes",) if space.edge_space is None else ("nodes", "edges", "edge_links")
        if type(data) is not dict:
            raise Refusal(path, self.phrase(space), data, json_kind(data))
        for name in data:
            if name not in allowed:
                raise Refusal(path, self.phrase(space), data, f"unexpected key {preview(name)}")
        if "nodes" not in data or ("edges" in data) != ("edge_links" in data):
            missing = next(name for name in allowed if name not in data)
            raise Refusal(path, self.phrase(space), data, f"no key {json.dumps(missing)}")
        nodes = _decode_list(space.node_space, data["nodes"], path + ("nodes",))
        if "edges" not in data or space.edge_space is None:  # no edge space: "edges" was refused above
            return GraphInstance(nodes, None, None)
        edges = _decode_list(space.edge_space, data["edges"], path + ("edges",))
        links = Grid.of((len(edges), 2), np.int32, 0, len(nodes) - 1)
        return GraphInstance(nodes, edges, grid_decode(links, data["edge_links"], path + ("edge_links",)))


def _decode_list(space: Space, data: Any, path: tuple) -> Any:
    if type(data) is not list:
        raise Refusal(path, f"a list, each item {phrase_of(space)}", data, json_kind(data))
    return _decode_stacked(space, data, path)
