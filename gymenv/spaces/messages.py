"""The sentences an ActionError says: where decoding failed, what was expected, and short previews of values."""

import json
from typing import Any

from gymnasium.spaces import Space

from gymenv.spaces.info import safe_str

PREVIEW = 80  # characters of a client value echoed back in an error
SPACE_PREVIEW = 160
LONG_PHRASE = 200  # longer descriptions of nested spaces fall back to their short form


class Refusal(Exception):
    """Where decoding failed and why; decode() turns it into one ActionError sentence."""

    def __init__(self, path: tuple, expected: str, value: Any, got: str | None = None):
        super().__init__(expected)
        self.path, self.expected, self.value, self.got = path, expected, value, got


def sentence(space: Space, data: Any, refusal: Refusal) -> str:
    """The client-facing sentence for a refused action `data`."""
    where = f"at {_path(refusal.path)}: " if refusal.path else ""
    # At the top level the value is already echoed; deeper down, show the part that was refused.
    got = refusal.got or (preview(refusal.value) if refusal.path else None)
    tail = f", got {got}" if got else ""
    space_text = clip(" ".join(str(space).split()), SPACE_PREVIEW)  # array reprs span lines
    return f"action {preview(data)} is not in {space_text}: {where}expected {refusal.expected}{tail}"


def _path(path: tuple) -> str:
    return "".join(f"[{step}]" if isinstance(step, int) else f"[{preview(step)}]" for step in path)


def shortest(full: str, short: str) -> str:
    """`full` unless it is too long to read, then `short`."""
    return full if len(full) <= LONG_PHRASE else short


def json_kind(data: Any) -> str:
    """What a client's JSON value is, in words ("an integer", "a list of 3 items")."""
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


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview(value: Any) -> str:
    """A short JSON-like rendering of a client value, whatever its size."""
    return clip(_render(value, PREVIEW), PREVIEW)


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
    return safe_str(value, repr)[:budget]


def _render_container(value: list | tuple | dict, budget: int) -> str:
    is_dict = isinstance(value, dict)
    text, close = ("{", "}") if is_dict else ("[", "]")
    for i, item in enumerate(value.items() if isinstance(value, dict) else value):
        if len(text) >= budget:
            return text + "…" + close
        # Each child gets only what is left, so depth and work stay bounded by the budget.
        left = budget - len(text)
        part = f"{_render(item[0], left)}: {_render(item[1], left)}" if is_dict else _render(item, left)
        text += (", " if i else "") + part
    return text + close
