"""Frames of a recorded episode, rendered by replaying its seed and actions in a fresh env.

The ledger keeps observations, not frames (most envs' observations are not pictures): the
dashboard's replay makes them again. Deterministic envs give the frames the agent saw; an env
that is not gives frames of what it does now, which the dashboard says next to the player.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from gymenv import spaces
from gymenv.observations import png_bytes
from gymsite.errors import InvalidArgument
from runs.dashboard import RecordedEpisode, episode_actions

MAX_FRAMES = 3000  # a longer episode is refused: its frames would not fit a browser tab comfortably
CACHED_EPISODES = 8  # a few MB each (CartPole: ~3 KB a frame)


@dataclass(frozen=True)
class Replay:
    """An episode's frames as PNG, one before its first step, then one after each step."""

    frames: tuple[bytes, ...]
    shape: tuple[int, ...]


def episode_frames(*, env_id: str, env_kwargs: dict, seed: Any, actions: list[Any],
                   options: dict | None = None) -> list[np.ndarray]:
    """The rgb_array frames of the episode `seed` and `actions` make in a fresh env: len(actions) + 1."""
    if len(actions) + 1 > MAX_FRAMES:
        raise InvalidArgument(f"this episode has {len(actions)} steps: replays show at most {MAX_FRAMES - 1}")
    env = gym.make(env_id, render_mode="rgb_array", **env_kwargs)
    try:
        env.reset(seed=seed, options=options)
        frames = [np.asarray(env.render())]
        for data in actions:
            _, _, terminated, truncated, _ = env.step(spaces.decode(env.action_space, data))
            frames.append(np.asarray(env.render()))
            if terminated or truncated:
                break
        return frames
    finally:
        env.close()


def episode_replay(*, run_id: str, episode_num: int) -> Replay:
    """A recorded episode's frames as PNGs; an ended episode's are cached (its actions never change)."""
    recorded = episode_actions(run_id=run_id, episode_num=episode_num)
    if recorded.ended:
        return _ended_replay(recorded.run_id, episode_num)
    return _render(recorded)


@functools.lru_cache(maxsize=CACHED_EPISODES)
def _ended_replay(run_id: str, episode_num: int) -> Replay:
    return _render(episode_actions(run_id=run_id, episode_num=episode_num))


def _render(recorded: RecordedEpisode) -> Replay:
    frames = episode_frames(env_id=recorded.env_id, env_kwargs=recorded.env_kwargs, seed=recorded.seed,
                            actions=recorded.actions)
    return Replay(frames=tuple(png_bytes(f) for f in frames), shape=tuple(frames[0].shape))


def gif(replay_: Replay, *, fps: int = 25) -> bytes:
    """The replay as an animated GIF (Pillow writes it: no video library needed); GIF counts time in
    hundredths of a second, so 25 fps plays exactly as the browser player does."""
    from PIL import Image

    images = [Image.open(io.BytesIO(png)).convert("RGB") for png in replay_.frames]
    out = io.BytesIO()
    images[0].save(out, format="GIF", save_all=True, append_images=images[1:], duration=max(1, 1000 // fps),
                   loop=0, optimize=False)
    return out.getvalue()
