"""Codecs of the numeric spaces, each a Grid: Discrete, Box, MultiDiscrete, MultiBinary."""

from typing import Any

import numpy as np
from gymnasium import spaces

from gymenv.spaces.codec import Codec, SpaceT, codec_for
from gymenv.spaces.grid import Grid, grid_decode, grid_phrase, grid_schema
from gymenv.spaces.info import encode_array, to_json
from gymenv.spaces.messages import Refusal, json_kind


class _GridCodec(Codec[SpaceT]):
    def grid(self, space: SpaceT) -> Grid:
        raise NotImplementedError

    def schema(self, space: SpaceT) -> dict:
        return grid_schema(self.grid(space))

    def phrase(self, space: SpaceT) -> str:
        return grid_phrase(self.grid(space))

    def encode(self, space: SpaceT, value: Any) -> Any:
        return encode_array(value)

    def decode(self, space: SpaceT, data: Any, path: tuple) -> Any:
        return grid_decode(self.grid(space), data, path)


@codec_for(spaces.Discrete)
class _DiscreteCodec(_GridCodec[spaces.Discrete]):
    def grid(self, space: spaces.Discrete) -> Grid:
        return Grid.of((), space.dtype, space.start, space.start + space.n - 1)

    def describe(self, space: spaces.Discrete) -> dict:
        return {"n": int(space.n), "start": int(space.start)}

    def encode(self, space: spaces.Discrete, value: Any) -> Any:
        return int(value)

    def decode(self, space: spaces.Discrete, data: Any, path: tuple) -> Any:
        if type(data) is not int:
            raise Refusal(path, self.phrase(space), data, json_kind(data))
        start = int(space.start)
        if not start <= data < start + int(space.n):
            raise Refusal(path, self.phrase(space), data)
        return space.from_jsonable([data])[0]


@codec_for(spaces.Box)
class _BoxCodec(_GridCodec[spaces.Box]):
    def grid(self, space: spaces.Box) -> Grid:
        return Grid.of(space.shape, space.dtype, space.low, space.high)

    def describe(self, space: spaces.Box) -> dict:
        return {
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": _bound_summary(space.low, space.bounded_below, "-inf"),
            "high": _bound_summary(space.high, space.bounded_above, "inf"),
        }


def _bound_summary(bound: np.ndarray, bounded: np.ndarray, unbounded: str) -> Any:
    """One side of a Box's bounds as strict JSON: a scalar when it is the same everywhere (an image's
    0 or 255, not 100,800 copies of it), else nested lists; `unbounded` ("-inf"/"inf") where it has none."""
    # bounded_* rather than isfinite: an integer Box built with -inf stores the dtype minimum.
    if bound.size and not bounded.any():
        return unbounded
    if bound.size and bounded.all() and (bound == bound.flat[0]).all():
        return bound.flat[0].item()
    out = bound.astype(object)
    out[~bounded] = unbounded
    return out.tolist()


@codec_for(spaces.MultiDiscrete)
class _MultiDiscreteCodec(_GridCodec[spaces.MultiDiscrete]):
    def grid(self, space: spaces.MultiDiscrete) -> Grid:
        return Grid.of(space.shape, space.dtype, space.start, space.start + space.nvec - 1)

    def describe(self, space: spaces.MultiDiscrete) -> dict:
        return {"nvec": space.nvec.tolist(), "start": space.start.tolist(), "dtype": str(space.dtype)}


@codec_for(spaces.MultiBinary)
class _MultiBinaryCodec(_GridCodec[spaces.MultiBinary]):
    def grid(self, space: spaces.MultiBinary) -> Grid:
        return Grid.of(space.shape, space.dtype, 0, 1)

    def describe(self, space: spaces.MultiBinary) -> dict:
        return {"n": to_json(space.n), "shape": list(space.shape)}
