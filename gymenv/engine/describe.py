"""What an agent needs to know about an env: spaces, action schema, limits and docs."""

from __future__ import annotations

import functools

import gymnasium as gym

from gymenv import catalogue, meanings, spaces


def describe_env(env_id: str, env: gym.Env) -> dict:
    """env_info's parts from a live env: the meanings depend on the instance (FrozenLake's own map)."""
    spec = catalogue.env_spec(env_id)
    return {
        "action_space": spaces.describe(env.action_space),
        "observation_space": spaces.describe(env.observation_space),
        "action_schema": spaces.json_schema(env.action_space),
        "action_meanings": meanings.action_meanings(env),
        "observation_meaning": meanings.observation_meaning(env),
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
        return {"env_id": env_id, **describe_env(env_id, env)}
    finally:
        env.close()
