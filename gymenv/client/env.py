"""RemoteEnv: a gymnasium.Env whose env lives on a gymsite server, in an instance of its own."""

from __future__ import annotations

import base64
import http.client
import io
import weakref
from typing import Any

import gymnasium as gym
import numpy as np

from gymenv import spaces
from gymenv.client.http import Connection, RemoteError
from gymenv.spaces.rebuild import from_description, value_from_json


def open_instance(conn: Connection, body: dict) -> tuple[str, dict]:
    """A new instance of the server's, and its env_info; refused, the connection is closed."""
    try:
        made = conn.post("/envs", {k: v for k, v in body.items() if v is not None})
    except BaseException:
        conn.close()
        raise
    instance_id = made["instance_id"]
    try:
        return instance_id, conn.get(f"/envs/{instance_id}")["env_info"]
    except BaseException:
        delete_instance(conn, instance_id)
        raise


def delete_instance(conn: Connection, instance_id: str) -> None:
    """The instance goes (on close() or when its env is garbage-collected); a server already gone is fine."""
    try:
        conn.delete(f"/envs/{instance_id}")
    except (RemoteError, OSError, http.client.HTTPException):
        pass
    finally:
        conn.close()


class RemoteEnv(gym.Env):
    """A gymnasium.Env served by gymsite at `url`: it opens its own instance of `env_id` (the server's
    default env when None), with the exact spaces the server describes, and deletes it on close() or when
    garbage-collected. Refusals raise RemoteError with the server's message and code."""

    def __init__(self, url: str, env_id: str | None = None, token: str | None = None, render_mode: str | None = None,
                 obs_format: str | None = None, **env_kwargs: Any):
        self._conn = Connection(url, token=token)
        self.instance_id, info = open_instance(self._conn, {
            "env_id": env_id, "render_mode": render_mode, "obs_format": obs_format, "env_kwargs": env_kwargs or None})
        self._closer = weakref.finalize(self, delete_instance, self._conn, self.instance_id)
        self._path = f"/envs/{self.instance_id}"
        self.env_info = info
        self.action_space = from_description(info["action_space"])
        self.observation_space = from_description(info["observation_space"])
        self.render_mode = info["render_mode"]
        self.metadata = {"render_modes": info["render_modes"]}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        answer = self._conn.post(f"{self._path}/reset", {"seed": seed, "options": options})
        return value_from_json(self.observation_space, answer["observation"]), answer["info"]

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict]:
        answer = self._conn.post(f"{self._path}/step", {"action": spaces.encode(self.action_space, action)})
        reward = answer["reward"]
        return (value_from_json(self.observation_space, answer["observation"]),
                float("nan") if reward is None else float(reward), answer["terminated"], answer["truncated"],
                answer["info"])

    def render(self) -> Any:
        if self.render_mode is None:
            return None
        frame = self._conn.post(f"{self._path}/render", {})
        if frame["type"] != "image_base64":
            return frame["render"]
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(base64.b64decode(frame["render"])))).reshape(frame["shape"])

    def close(self) -> None:
        self._closer()
        super().close()
