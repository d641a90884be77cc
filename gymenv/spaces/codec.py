"""What every space's codec does, the fallback codec, and the lookup of a space's codec by its type."""

import re
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from gymnasium.spaces import Space

from gymenv.spaces.info import to_json
from gymenv.spaces.messages import SPACE_PREVIEW, Refusal, clip

SpaceT = TypeVar("SpaceT", bound=Space)  # a codec subclass handles one space type; its methods take it


class Codec(Generic[SpaceT]):
    """The fallback for space types gymnasium may add: its own (batched) JSON API, checked by contains()."""

    def describe(self, space: SpaceT) -> dict:
        return {}

    def schema(self, space: SpaceT) -> dict:
        return {}

    def phrase(self, space: SpaceT) -> str:
        return f"a value of {clip(str(space), SPACE_PREVIEW)}"

    def encode(self, space: SpaceT, value: Any) -> Any:
        return to_json(space.to_jsonable([value])[0])

    def decode(self, space: SpaceT, data: Any, path: tuple) -> Any:
        try:
            value = space.from_jsonable([data])[0]
        except Exception:  # noqa: BLE001 - an unknown space's from_jsonable may fail any way on bad input
            raise Refusal(path, self.phrase(space), data) from None
        if not space.contains(value):
            raise Refusal(path, self.phrase(space), data)
        return value


_FALLBACK: Codec[Space] = Codec()
_CODECS: dict[type, Codec[Any]] = {}


def codec_for(space_type: type[Space]) -> Callable[[type[Codec[Any]]], type[Codec[Any]]]:
    """Class decorator: the codec of `space_type` and of its subclasses that have none of their own."""

    def register(cls: type[Codec[Any]]) -> type[Codec[Any]]:
        _CODECS[space_type] = cls()
        return cls

    return register


def codec_of(space: Space) -> Codec[Any]:
    for cls in type(space).__mro__:
        if (codec := _CODECS.get(cls)) is not None:
            return codec
    return _FALLBACK


def describe(space: Space) -> dict:
    """The space as strict JSON: its type, its parameters (sub-spaces nested) and its repr."""
    return {"type": type(space).__name__, **codec_of(space).describe(space), "repr": _stable(str(space))}


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")


def _stable(text: str) -> str:
    """A repr without memory addresses (MiniGrid's MissionSpace shows its mission function): the same
    in every process, and nothing about the server's memory layout."""
    return _ADDRESS.sub(">", text)


def encode(space: Space, value: Any) -> Any:
    """A value of the space (e.g. an observation) as strict JSON; non-finite floats become None."""
    return codec_of(space).encode(space, value)


def schema_of(space: Space) -> dict:
    return codec_of(space).schema(space)


def phrase_of(space: Space) -> str:
    return codec_of(space).phrase(space)


def decode_at(space: Space, data: Any, path: tuple) -> Any:
    """Decode `data`, found at `path` in the client's action; Refusal if it is not in the space."""
    return codec_of(space).decode(space, data, path)
