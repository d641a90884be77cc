"""What a client may pass as `env_kwargs`: small plain JSON that names no file, module or class.

Env constructors take paths (MuJoCo's `xml_file`), import strings and URLs: a client's kwargs
must not make the server open, import or fetch what the client names. Key names are matched by
substring (so `direction` counts as path-like for "dir"): a false refusal costs the operator one
allowed key, a false acceptance costs a file.
"""

from __future__ import annotations

import json
import re
from typing import Any

from gymsite.errors import InvalidArgument

# Levels of objects and lists, env_kwargs itself the first: env kwargs are flat or hold small
# config dicts (MuJoCo's default_camera_config).
MAX_DEPTH = 4
PATH_LIKE_NAMES = ("file", "path", "dir", "folder", "xml", "url", "uri", "module", "class", "entry_point",
                   "import")
# "pkg.module:Class", what gymnasium's entry points and many env factories import.
IMPORT_STRING = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


def check_client_env_kwargs(kwargs: Any, *, allowed_keys: frozenset[str] | None, max_bytes: int) -> dict:
    """Returns a copy of `kwargs` if a client may pass them to an env, else raises InvalidArgument.

    `allowed_keys`: top-level keys the operator allows even though their names look path-like;
    those keys, and only those, may also carry path-like values. `render_mode` is never allowed:
    the server picks it from the create request's own field.
    """
    if not isinstance(kwargs, dict):
        raise InvalidArgument("env_kwargs must be a JSON object")
    try:
        size = len(json.dumps(kwargs, allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode())
    except (TypeError, ValueError, RecursionError):
        raise InvalidArgument("env_kwargs must be plain JSON: strings, finite numbers, booleans, null, "
                              "lists and objects") from None
    if size > max_bytes:
        raise InvalidArgument(f"env_kwargs must be at most {max_bytes} bytes of JSON, not {size}")
    allowed = allowed_keys or frozenset()
    for key, value in kwargs.items():
        if key == "render_mode":
            raise InvalidArgument("pass render_mode as its own field, not inside env_kwargs")
        _check_key(key, where="", paths_allowed=key in allowed)
        _check_value(value, where=_where("", key), depth=2, paths_allowed=key in allowed)
    return dict(kwargs)


def _check_value(value: Any, *, where: str, depth: int, paths_allowed: bool) -> None:
    if value is None or isinstance(value, (bool, int, float)):  # non-finite floats failed json.dumps
        return
    if isinstance(value, str):
        if not paths_allowed and _path_like_value(value):
            raise InvalidArgument(f"env_kwargs {where}: {value[:60]!r} looks like a path, URL or import string, "
                                  "which clients may not pass")
        return
    if not isinstance(value, (list, dict)):
        raise InvalidArgument(f"env_kwargs {where}: only JSON values are accepted")
    if depth > MAX_DEPTH:
        raise InvalidArgument(f"env_kwargs {where}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_value(item, where=f"{where}[{index}]", depth=depth + 1, paths_allowed=paths_allowed)
        return
    for key, item in value.items():
        _check_key(key, where=where, paths_allowed=paths_allowed)
        _check_value(item, where=_where(where, key), depth=depth + 1, paths_allowed=paths_allowed)


def _check_key(key: Any, *, where: str, paths_allowed: bool) -> None:
    if not isinstance(key, str):
        raise InvalidArgument(f"env_kwargs {where or 'keys'}: object keys must be strings")
    if not paths_allowed and any(name in key.lower() for name in PATH_LIKE_NAMES):
        raise InvalidArgument(f"env_kwargs key {_where(where, key)} names a file, URL, module or class, "
                              "which clients may not pass unless the operator allows that key")


def _path_like_value(value: str) -> bool:
    return ("/" in value or "\\" in value or value.startswith(("~", "."))
            or IMPORT_STRING.fullmatch(value) is not None)


def _where(parent: str, key: Any) -> str:
    name = repr(key[:60] if isinstance(key, str) else key)
    return f"{parent}[{name}]" if parent else name
