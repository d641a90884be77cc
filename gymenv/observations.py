"""Observation formats (SPEC 10): json, png (image parts), npy (Box parts) or none, per request or instance.

An encoded part is `{"encoding": "png"|"npy", "data": "<base64>", "shape": [...], "dtype": "..."}`;
inside a Dict or Tuple observation only the image (png) or Box (npy) parts are encoded, the rest
stays plain JSON. `Observation` encodes one value on demand, each form at most once: the answer,
the ledger and the MCP image content share the same PNG.
"""

from __future__ import annotations

import base64
import io
from typing import Any, Literal

import numpy as np
from gymnasium import spaces as gym_spaces
from gymnasium.spaces import Space

from gymenv import spaces
from gymenv.spaces.messages import clip
from gymsite.errors import InvalidArgument

ObsFormat = Literal["json", "png", "npy", "none"]
FORMATS: tuple[str, ...] = ("json", "png", "npy", "none")
MIN_IMAGE_SIDE = 8


def is_image(space: Space) -> bool:
    """A uint8 Box of shape HxW, HxWx1, HxWx3 or HxWx4 with H and W at least 8 (SPEC 10)."""
    if not isinstance(space, gym_spaces.Box) or space.dtype != np.uint8:
        return False
    shape = space.shape
    return (len(shape) == 2 or (len(shape) == 3 and shape[2] in (1, 3, 4))) and min(shape[:2]) >= MIN_IMAGE_SIDE


def has_part(space: Space, test) -> bool:
    if test(space):
        return True
    if isinstance(space, gym_spaces.Dict):
        return any(has_part(sub, test) for sub in space.spaces.values())
    if isinstance(space, gym_spaces.Tuple):
        return any(has_part(sub, test) for sub in space.spaces)
    return False


def default_format(space: Space) -> str:
    """png when the observation is (or holds) an image, json for all else."""
    return "png" if has_part(space, is_image) else "json"


def check_format(space: Space, fmt: Any) -> str:
    """`fmt` if this space's observations can take it; a 422 that says what can otherwise."""
    if fmt not in FORMATS:
        raise InvalidArgument(f"obs_format must be one of {', '.join(FORMATS)}, not {str(fmt)[:40]!r}")
    if fmt == "png" and not has_part(space, is_image):
        raise InvalidArgument(f"obs_format png needs an image observation (a uint8 Box HxW, HxWx1, HxWx3 or HxWx4, "
                              f"H and W >= {MIN_IMAGE_SIDE}); this one is {clip(str(space), 80)}: use json or npy")
    if fmt == "npy" and not has_part(space, lambda s: isinstance(s, gym_spaces.Box)):
        raise InvalidArgument("obs_format npy needs a Box observation (or Box parts); "
                              f"this one is {clip(str(space), 80)}: use json")
    return fmt


class Observation:
    """One observation of `space`; its wire and ledger forms are made on demand, once each."""

    __slots__ = ("_json", "_png", "space", "value")

    def __init__(self, space: Space, value: Any):
        self.space, self.value = space, value
        self._json: Any = _UNSET
        self._png: bytes | None = None

    @property
    def image(self) -> bool:
        return is_image(self.space)

    def json(self) -> Any:
        if self._json is _UNSET:
            self._json = spaces.encode(self.space, self.value)
        return self._json

    def png(self) -> bytes:
        """The PNG of a whole-image observation (is_image)."""
        if self._png is None:
            self._png = png_bytes(_pixels(np.asarray(self.value)))
        return self._png

    def wire(self, fmt: str) -> Any:
        """The observation as the answer carries it in `fmt` (checked with check_format)."""
        if fmt == "none":
            return None
        if fmt == "json":
            return self.json()
        if self.image and fmt == "png":
            return encoded("png", self.png(), np.asarray(self.value))
        return _parts(self.space, self.value, fmt)


def png_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # Level 1: frames are served live; a smaller PNG is not worth several times the CPU.
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def encoded(encoding: str, data: bytes, array: np.ndarray) -> dict:
    return {"encoding": encoding, "data": base64.b64encode(data).decode("ascii"), "shape": list(array.shape),
            "dtype": str(array.dtype)}


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _parts(space: Space, value: Any, fmt: str) -> Any:
    if fmt == "png" and is_image(space):
        array = np.asarray(value)
        return encoded("png", png_bytes(_pixels(array)), array)
    if fmt == "npy" and isinstance(space, gym_spaces.Box):
        array = np.asarray(value, dtype=space.dtype)
        return encoded("npy", npy_bytes(array), array)
    if isinstance(space, gym_spaces.Dict):
        return {key: _parts(sub, value[key], fmt) for key, sub in space.spaces.items()}
    if isinstance(space, gym_spaces.Tuple):
        return [_parts(sub, part, fmt) for sub, part in zip(space.spaces, value, strict=True)]
    return spaces.encode(space, value)


def _pixels(array: np.ndarray) -> np.ndarray:
    # PNG has no HxWx1 mode: such a frame is written as HxW gray (its shape field keeps the 1).
    return array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array


_UNSET: Any = object()
