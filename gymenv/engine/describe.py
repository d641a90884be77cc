"""What an agent needs to know about an env: spaces, action schema, limits and docs."""

from __future__ import annotations

import functools

import gymnasium as gym

from gymenv import catalogue, spaces


def describe_env(env_id: str, action_space: gym.Space, observation_space: gym.Space) -> dict:
    spec = catalogue.env_spec(env_id)
    return {
        "action_space": spaces.describe(action_space),
        "observation_space": spaces.describe(observation_space),
        "action_schema": spaces.json_schema(action_space),
        "max_episode_steps": spec.max_episode_steps,
        "reward_threshold": spec.reward_threshold,
        "render_modes": catalogue.render_modes(env_id),
        "description": catalogue.env_description(env_id),
    }


@functools.cache
def catalogue_entry(env_id: str) -> dict:
    """Spaces, schema and docs of an env id, from one throwaway make (once per process)."""
    env = gym.make(env_id)
    try:
        return {"env_id": env_id, **describe_env(env_id, env.action_space, env.observation_space)}
    finally:
        env.close()
