"""What the server knows about env ids before making them: checks, specs, docs, render modes."""

import importlib
import inspect
import json
from functools import cache
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import EnvSpec, load_env_creator

from gymenv import envdocs
from gymsite.errors import EnvNotAllowed, InvalidArgument

# Sections of gymnasium's env docstrings that help an agent play; the rest (arguments,
# version history, credits) is for people making the env.
USEFUL_SECTIONS = ("description", "action space", "observation space", "rewards", "starting state", "episode end")
MAX_DESCRIPTION_CHARS = 3000


def operator_env_id(env_id: str) -> str:
    """The operator's `module:EnvId` form imports `module` (which registers the env); returns `EnvId`."""
    if ":" in env_id:
        module, env_id = env_id.split(":", 1)
        importlib.import_module(module)
    return env_id


def check_client_env_id(env_id: Any, allowed: tuple[str, ...]) -> str:
    """A client's env id, refused before anything is imported unless the operator allowed it."""
    if not isinstance(env_id, str) or not env_id:
        raise InvalidArgument("env_id must be a non-empty string naming an allowed env")
    if ":" in env_id:
        raise InvalidArgument(f"env_id {env_id[:80]!r} is refused: module imports are not accepted from clients")
    if env_id not in allowed:
        raise EnvNotAllowed(f"env_id {env_id[:80]!r} is not allowed on this server; allowed: {', '.join(allowed)}")
    return env_id


def env_spec(env_id: str) -> EnvSpec:
    return gym.spec(env_id)


def spec_json(spec: EnvSpec) -> dict | None:
    try:
        return json.loads(spec.to_json())
    except (ValueError, TypeError):
        return None  # a spec with a callable entry point or unserialisable kwargs


def env_creator(env_id: str) -> Any:
    """What gymnasium.make calls for `env_id`: a callable entry point itself, else what its string names."""
    entry_point = env_spec(env_id).entry_point
    if callable(entry_point):
        return entry_point
    if entry_point is None:
        raise gym.error.Error(f"{env_id} registered but entry_point is not specified")
    return load_env_creator(entry_point)


@cache
def env_metadata(env_id: str) -> dict:
    return dict(getattr(env_creator(env_id), "metadata", None) or {})


def render_modes(env_id: str) -> list[str]:
    return [m for m in env_metadata(env_id).get("render_modes", []) if isinstance(m, str)]


def pick_render_mode(env_id: str, requested: str | None) -> str | None:
    """SPEC 3: the requested mode, else rgb_array when supported, else ansi, else none."""
    modes = render_modes(env_id)
    if requested is not None:
        if requested == "human":
            raise InvalidArgument("render_mode 'human' opens a window on the server; use rgb_array or ansi")
        if requested not in modes:
            raise InvalidArgument(f"render_mode {requested[:40]!r} is not supported by {env_id}; "
                                  f"it supports: {', '.join(modes) or 'none'}")
        return requested
    for mode in ("rgb_array", "ansi"):
        if mode in modes:
            return mode
    return None


@cache
def env_description(env_id: str) -> str:
    """The env's own docs (its class docstring), trimmed to what an agent needs."""
    try:
        doc = env_creator(env_id).__doc__ or ""
    except Exception:  # noqa: BLE001 - docs are a nicety; an odd entry point must not break info
        doc = ""
    doc = inspect.cleandoc(doc)
    kept = [f"{heading}\n{body}" for heading, body in envdocs.sections(doc) if heading.lower() in USEFUL_SECTIONS]
    return envdocs.excerpt("\n\n".join(kept) or doc, MAX_DESCRIPTION_CHARS) or f"Gymnasium environment {env_id}."

