"""Codec of the Text space, with a charset pattern that reads the same in Python's re and in JSON Schema."""

import json
from typing import Any

from gymnasium import spaces

from gymenv.spaces.codec import Codec, codec_for
from gymenv.spaces.messages import Refusal, clip, json_kind

_CHARSET_PREVIEW = 40


@codec_for(spaces.Text)
class _TextCodec(Codec[spaces.Text]):
    def describe(self, space: spaces.Text) -> dict:
        return {"min_length": space.min_length, "max_length": space.max_length, "charset": space.characters}

    def schema(self, space: spaces.Text) -> dict:
        chars = f"[{_char_class(space.characters)}]*" if space.characters else ""
        # `$` alone also matches before a final newline in Python's re; the lookahead pins the true end.
        pattern = f"^{chars}$(?!\\n)"
        return {"type": "string", "minLength": space.min_length, "maxLength": space.max_length, "pattern": pattern}

    def phrase(self, space: spaces.Text) -> str:
        charset = json.dumps(clip(space.characters, _CHARSET_PREVIEW), ensure_ascii=False)
        return f"a string of {space.min_length} to {space.max_length} characters from {charset}"

    def encode(self, space: spaces.Text, value: Any) -> Any:
        return str(value)

    def decode(self, space: spaces.Text, data: Any, path: tuple) -> Any:
        if type(data) is not str:
            raise Refusal(path, self.phrase(space), data, json_kind(data))
        if not space.min_length <= len(data) <= space.max_length:
            raise Refusal(path, self.phrase(space), data, f"a string of {len(data)} characters")
        charset = space.character_set
        for i, char in enumerate(data):
            if char not in charset:
                got = f"{json.dumps(char, ensure_ascii=False)} at position {i}"
                raise Refusal(path, self.phrase(space), data, got)
        return data


def _char_class(chars: str) -> str:
    """A regex character class body, valid both in Python's re and in ECMA-262 (JSON Schema's dialect)."""
    points = sorted(set(map(ord, chars)))
    runs: list[list[int]] = []
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
