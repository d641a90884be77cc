"""What an env's actions and observations mean, for agents: action names, observation notes, plain-text renders."""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym
from gymnasium import spaces

# The action tables of gymnasium's docs, keyed by the env class's "module:Class" (its entry point), so an
# env registered again under another id keeps its meanings.
ACTION_TABLES: dict[str, list[str]] = {
    "gymnasium.envs.classic_control.cartpole:CartPoleEnv": ["push cart to the left", "push cart to the right"],
    "gymnasium.envs.classic_control.mountain_car:MountainCarEnv": [
        "accelerate to the left", "do not accelerate", "accelerate to the right"],
    "gymnasium.envs.classic_control.acrobot:AcrobotEnv": [
        "apply -1 torque to the actuated joint", "apply 0 torque to the actuated joint",
        "apply +1 torque to the actuated joint"],
    "gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv": ["move left", "move down", "move right", "move up"],
    "gymnasium.envs.toy_text.cliffwalking:CliffWalkingEnv": ["move up", "move right", "move down", "move left"],
    "gymnasium.envs.toy_text.taxi:TaxiEnv": [
        "move south (down)", "move north (up)", "move east (right)", "move west (left)",
        "pick up the passenger", "drop off the passenger"],
    "gymnasium.envs.toy_text.blackjack:BlackjackEnv": ["stick (stop taking cards)", "hit (take another card)"],
    "gymnasium.envs.box2d.lunar_lander:LunarLander": [
        "do nothing", "fire the left orientation engine", "fire the main engine", "fire the right orientation engine"],
    # Only with continuous=False; the length check below leaves the default Box action space alone.
    "gymnasium.envs.box2d.car_racing:CarRacing": ["do nothing", "steer right", "steer left", "gas", "brake"],
}


def action_meanings(env: gym.Env) -> list[str] | None:
    """One phrase per Discrete action, in action order; None when the env's actions have no known names."""
    space = env.action_space
    inner: Any = env.unwrapped  # ALE and MiniGrid envs have more than gym.Env declares
    if not isinstance(space, spaces.Discrete):
        return None
    if callable(getattr(inner, "get_action_meanings", None)):  # ALE
        names = [str(name) for name in inner.get_action_meanings()]
    elif _is_minigrid(inner):
        names = [action.name for action in inner.actions]
    else:
        names = ACTION_TABLES.get(_class_path(inner), [])
    return names if len(names) == int(space.n) else None


def observation_meaning(env: gym.Env) -> str | None:
    """How to read this instance's observation (its own map or grid), or None when there is nothing to add."""
    inner = env.unwrapped
    explain = _EXPLAINERS.get(_class_path(inner))
    if explain is not None:
        return explain(inner)
    if _is_minigrid(inner):
        return _minigrid(inner)
    return None


def _frozen_lake(env: Any) -> str:
    rows = [b"".join(row).decode() for row in env.desc]
    spec = env.spec
    slippery = spec is None or spec.kwargs.get("is_slippery", True)
    slide = (" The ice is slippery: a move goes the chosen way with probability 1/3, else to either side."
             if slippery else " The ice is not slippery: every move goes the chosen way.")
    return (f"The observation is the agent's cell as one integer, row * ncols + col (row 0 at the top), "
            f"on this map of nrow={env.nrow} rows and ncols={env.ncol} columns:\n" + "\n".join(rows) + "\n"
            "S is the start, F frozen ice (safe), H a hole (the episode ends with reward 0) and G the goal "
            "(the episode ends with reward 1)." + slide + " In ansi renders the agent's cell is in [brackets].")


def _cliff_walking(env: Any) -> str:
    nrow, ncol = env.shape
    start, goal = (nrow - 1) * ncol, nrow * ncol - 1
    return (f"The observation is the agent's cell as one integer, row * ncols + col (row 0 at the top), on a grid "
            f"of nrow={nrow} rows and ncols={ncol} columns. The agent starts at {start} (bottom left) and the goal "
            f"is {goal} (bottom right); the cells between them, {start + 1} to {goal - 1}, are the cliff: stepping "
            "there costs -100 and sends the agent back to the start. Every other step costs -1. In ansi renders "
            "x is the agent, C the cliff and T the goal.")


def _taxi(env: Any) -> str:
    names = "RGYB"
    places = ", ".join(f"{i} = {names[i]} at (row {r}, col {c})" for i, (r, c) in enumerate(env.locs))
    return ("The observation is one integer, ((taxi_row * 5 + taxi_col) * 5 + passenger_location) * 4 + "
            f"destination, on a 5x5 grid with row 0 at the top. Locations: {places}; passenger_location 4 means "
            "the passenger is in the taxi. In ansi renders the taxi's cell is in [brackets].")


def _blackjack(env: Any) -> str:
    return ("The observation is (player's current sum, the dealer's face-up card from 1 to 10 where 1 is an ace, "
            "whether the player holds a usable ace: 0 or 1).")


_EXPLAINERS = {
    "gymnasium.envs.toy_text.frozen_lake:FrozenLakeEnv": _frozen_lake,
    "gymnasium.envs.toy_text.cliffwalking:CliffWalkingEnv": _cliff_walking,
    "gymnasium.envs.toy_text.taxi:TaxiEnv": _taxi,
    "gymnasium.envs.toy_text.blackjack:BlackjackEnv": _blackjack,
}


def _minigrid(env: Any) -> str:
    from minigrid.core.constants import COLOR_TO_IDX, OBJECT_TO_IDX, STATE_TO_IDX

    def legend(table: dict[str, int]) -> str:
        return ", ".join(f"{index} {name}" for name, index in sorted(table.items(), key=lambda item: item[1]))

    size = env.agent_view_size
    return (f"image is the agent's view, {size}x{size} cells indexed image[x][y] (x left to right, y top to "
            f"bottom), the agent at x={size // 2}, y={size - 1} facing toward y=0. Each cell is "
            f"[object, color, state]. object: {legend(OBJECT_TO_IDX)}. color: {legend(COLOR_TO_IDX)}. "
            f"state (doors): {legend(STATE_TO_IDX)}. direction is the way the agent faces: 0 right, 1 down, "
            "2 left, 3 up. mission is the task, in words.")


def _is_minigrid(env: Any) -> bool:
    # By module name: minigrid is an extra, imported only because such an env was made.
    return type(env).__module__.split(".")[0] == "minigrid" and hasattr(env, "actions")


def _class_path(env: Any) -> str:
    return f"{type(env).__module__}:{type(env).__qualname__}"


# -- ansi renders ---------------------------------------------------------------------------------

_SGR = re.compile(r"\x1b\[([0-9;]*)m")
_OTHER_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")


def plain_text(frame: str) -> str:
    """An ansi render without terminal escape codes. Text-grid envs mark the agent's cell with a background
    colour (FrozenLake's red, Taxi's yellow or green); that cell comes back in [brackets] instead."""
    out, highlighted, pos = [], False, 0
    for m in _SGR.finditer(frame):
        out.append(frame[pos:m.start()])
        pos = m.end()
        on = _background(m.group(1), highlighted)
        if on != highlighted:
            out.append("[" if on else "]")
            highlighted = on
    out.append(frame[pos:])
    if highlighted:
        out.append("]")
    return _OTHER_ESCAPE.sub("", "".join(out))


def _background(params: str, current: bool) -> bool:
    """Whether a background colour is set after an SGR sequence with these parameters."""
    codes = [int(code) for code in params.split(";") if code] or [0]
    i = 0
    while i < len(codes):
        code = codes[i]
        if code == 0 or code == 49:
            current = False
        elif 40 <= code <= 48 or 100 <= code <= 107:
            current = True
        if code in (38, 48):  # extended colour: its arguments (5;n or 2;r;g;b) are no codes of their own
            i += 2 if codes[i + 1:i + 2] == [5] else 4
        i += 1
    return current
