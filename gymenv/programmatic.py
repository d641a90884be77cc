"""Programmatic use: GymService drives an env in-process; GymHTTPServer serves it over REST and MCP."""

from __future__ import annotations

import dataclasses
from typing import Any, TypedDict

from gymsite import serving


class _RunLimits(TypedDict, total=False):
    num_episodes: int
    max_steps_per_episode: int


class GymService:
    """The default instance of an env, in-process. Each method returns the REST body as a dict; a
    refusal raises the domain error REST would answer with (`gymsite.errors`, e.g. InvalidAction)."""

    def __init__(self, env_id: str, *, render_mode: str | None = None, env_kwargs: dict | None = None,
                 enable_run_manager: bool = True, num_episodes: int | None = None,
                 max_steps_per_episode: int | None = None, success_threshold: float | None = None):
        from gymenv.engine import DEFAULT_INSTANCE

        given: _RunLimits = {}  # only those given: ServerConfig has its own defaults for the others
        if num_episodes is not None:
            given["num_episodes"] = num_episodes
        if max_steps_per_episode is not None:
            given["max_steps_per_episode"] = max_steps_per_episode
        config = serving.ServerConfig(
            env_id=env_id, render_mode=render_mode, env_kwargs=env_kwargs or {}, run_manager=enable_run_manager,
            success_threshold=success_threshold, **given)
        config.check()
        self.engine = serving.build_engine(serving.resolve(config))
        self.instance = self.engine.get(DEFAULT_INSTANCE)

    def _call(self, fn, *args) -> dict:
        """On the owner thread, as REST and MCP call it."""
        return self.instance.call_sync(fn, *args).model_dump(mode="json")

    def reset(self, seed: int | None = None, options: dict | None = None,
              expected_episode: int | None = None) -> dict:
        return self._call(self.instance.op_reset, seed, options, None, expected_episode)

    def step(self, action: Any, expected_step: int | None = None) -> dict:
        return self._call(self.instance.op_step, action, None, expected_step)

    def render(self, mode: str | None = None) -> dict:
        return self._call(self.instance.op_render, mode)

    def sample(self) -> dict:
        return self._call(self.instance.op_sample)

    def info(self) -> dict:
        from gymenv.schemas import EnvInfoOut

        return EnvInfoOut(env_info=self.instance.env_info()).model_dump(mode="json")

    def close(self) -> dict:
        return self._call(self.instance.op_close)

    def run_status(self) -> dict:
        return self._run_manager().status().model_dump(mode="json")

    def run_statistics(self) -> dict:
        return self._run_manager().statistics().model_dump(mode="json")

    def reset_run(self) -> dict:
        return self._run_manager().reset().model_dump(mode="json")

    def _run_manager(self):
        return self.engine.run_manager(self.instance.instance_id)

    def shutdown(self) -> None:
        """Close the env and end the run (an unfinished run is kept as stopped, "server shut down")."""
        self.engine.shutdown()

    def __enter__(self) -> GymService:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


class GymHTTPServer:
    """REST, MCP, the admin and the ledger for one env on one port, as `runserver_gym` serves them:
    the same checks, and a mistake ends `run()` with the same one line (SystemExit)."""

    def __init__(self, env_id: str, **options: Any):
        fields = {f.name for f in dataclasses.fields(serving.ServerConfig)}
        unknown = sorted(set(options) - fields)
        if unknown:
            raise TypeError(f"GymHTTPServer got unknown options {unknown}; it takes {sorted(fields - {'env_id'})}")
        self.config = serving.ServerConfig(env_id=env_id, **options)

    def run(self, host: str | None = None, port: int | None = None) -> None:
        config = dataclasses.replace(self.config, host=host or self.config.host, port=port or self.config.port)
        try:
            serving.run(config)
        except serving.ConfigError as err:
            raise SystemExit(f"gymsite: {err}") from None
