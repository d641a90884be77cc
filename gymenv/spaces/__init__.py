"""JSON codec for every Gymnasium space: describe it, give its JSON Schema, encode values, decode actions strictly."""

from typing import Any

from gymnasium.spaces import Space

# Importing the codec modules registers their codecs; the package's users need only this module.
from gymenv.spaces import composite, numeric, text  # noqa: F401
from gymenv.spaces.codec import decode_at, describe, encode, phrase_of, schema_of
from gymenv.spaces.info import to_json
from gymenv.spaces.messages import Refusal, sentence

__all__ = ["ActionError", "decode", "describe", "encode", "json_schema", "to_json"]


class ActionError(ValueError):
    """Raised by decode(); str(err) is a client-facing sentence saying what the space expects."""


def json_schema(space: Space) -> dict:
    """A JSON Schema (draft 2020-12) met by exactly the JSON that decode() accepts, Graph links aside."""
    return {**schema_of(space), "description": phrase_of(space)}


def decode(space: Space, data: Any) -> Any:
    """Client JSON as a value `space.contains`, without coercion; ActionError otherwise."""
    try:
        value = decode_at(space, data, ())
    except Refusal as refusal:
        raise ActionError(sentence(space, data, refusal)) from None
    # The codec's own checks should imply this; contains() is gymnasium's word and the env relies on it.
    if not space.contains(value):
        raise ActionError(sentence(space, data, Refusal((), phrase_of(space), data)))
    return value
