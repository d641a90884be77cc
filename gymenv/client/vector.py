"""RemoteVectorEnv: a gymnasium VectorEnv whose sub-envs are a vector instance on a gymsite server."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
from gymnasium import spaces as gym_spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array, iterate

from gymenv import spaces
from gymenv.client.env import delete_instance, open_instance
from gymenv.client.http import Connection
from gymenv.spaces.rebuild import decoded, from_description, value_from_json

AUTORESET_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP,
                   "disabled": AutoresetMode.DISABLED}


class RemoteVectorEnv(VectorEnv):
    """num_envs sub-envs of `env_id` in one vector instance of the server at `url` (gymnasium.make_vec on the
    server), with the instance's autoreset mode in its metadata: a loop written for make_vec runs on it
    unchanged. The instance is deleted on close() or when the object is garbage-collected."""

    def __init__(self, url: str, env_id: str | None = None, num_envs: int = 2, token: str | None = None,
                 vectorization_mode: str | None = None, autoreset_mode: str | None = None,
                 obs_format: str | None = None, **env_kwargs: Any):
        self._conn = Connection(url, token=token)
        self.instance_id, info = open_instance(self._conn, {
            "env_id": env_id, "num_envs": num_envs, "vectorization_mode": vectorization_mode,
            "autoreset_mode": autoreset_mode, "env_kwargs": env_kwargs or None})
        self._closer = weakref.finalize(self, delete_instance, self._conn, self.instance_id)
        self._path = f"/envs/{self.instance_id}"
        self.env_info = info
        self.num_envs = info["num_envs"]
        self.single_action_space = from_description(info["single_action_space"])
        self.single_observation_space = from_description(info["single_observation_space"])
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.metadata = {"autoreset_mode": AUTORESET_MODES[info["autoreset_mode"]], "render_modes": []}
        self.render_mode = None
        # npy carries a Box batch as its exact bytes: smaller and faster to read than JSON numbers.
        if obs_format is None and isinstance(self.single_observation_space, gym_spaces.Box):
            obs_format = "npy"
        self._obs_format = obs_format
        self._plain_actions = isinstance(self.single_action_space, gym_spaces.Discrete | gym_spaces.Box |
                                         gym_spaces.MultiDiscrete | gym_spaces.MultiBinary)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        body: dict[str, Any] = {"seed": seed, "options": _plain(options)}
        if self._obs_format is not None:
            body["obs_format"] = self._obs_format
        answer = self._conn.post(f"{self._path}/reset", body)
        return self._observations(answer["observation"]), self._info(answer["info"])

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        if self._plain_actions:
            # A batch of a numeric space is an array of its actions: the list of them in one call.
            data = np.asarray(actions, dtype=self.action_space.dtype).tolist()
        else:
            data = [spaces.encode(self.single_action_space, a) for a in iterate(self.action_space, actions)]
        body: dict[str, Any] = {"action": data}
        if self._obs_format is not None:
            body["obs_format"] = self._obs_format
        answer = self._conn.post(f"{self._path}/step", body)
        rewards = np.array([np.nan if r is None else r for r in answer["reward"]], dtype=np.float64)
        return (self._observations(answer["observation"]), rewards, np.array(answer["terminated"], dtype=np.bool_),
                np.array(answer["truncated"], dtype=np.bool_), self._info(answer["info"]))

    def close_extras(self, **kwargs: Any) -> None:
        self._closer()

    def _observations(self, data: Any) -> Any:
        if isinstance(data, dict) and "encoding" in data:
            return decoded(data)
        single = self.single_observation_space
        if isinstance(single, gym_spaces.Box | gym_spaces.Discrete | gym_spaces.MultiDiscrete | gym_spaces.MultiBinary):
            return value_from_json(self.observation_space, data)
        out = create_empty_array(single, self.num_envs)
        assert out is not None  # None only for spaces with no batched form, which make_vec refuses
        return concatenate(single, [value_from_json(single, item) for item in data], out)

    def _info(self, info: dict) -> dict:
        """The server's info (gymnasium's vector info as JSON) as numpy arrays again."""
        out: dict[str, Any] = {}
        for key, value in info.items():
            if isinstance(value, dict):
                out[key] = self._info(value)
            elif key == "final_obs":
                single = self.single_observation_space
                out[key] = _objects([None if v is None else value_from_json(single, v) for v in value])
            elif isinstance(value, list):
                try:
                    out[key] = np.array(value)
                except ValueError:  # ragged: one object per sub-env, as gymnasium keeps them
                    out[key] = _objects(value)
            else:
                out[key] = value
        return out


def _objects(items: list) -> np.ndarray:
    """A 1-d object array of `items` (np.array would stack equal-shaped arrays into one)."""
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def _plain(options: dict | None) -> dict | None:
    """Reset options as JSON (a reset_mask arrives as a numpy array from code written for make_vec)."""
    if options is None:
        return None
    return {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in options.items()}
