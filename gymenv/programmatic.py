"""Programmatic use: GymService drives an env in-process; GymHTTPServer serves it over REST and MCP."""

from __future__ import annotations

import os
import socket
from typing import Any

import django

DEFAULT_SETTINGS = "gymsite.settings"


def setup_django() -> None:
    """Configure Django (unless the host program did) and bring the database's tables up to date."""
    from django.apps import apps

    if not apps.ready:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", DEFAULT_SETTINGS)
        django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        call_command("migrate", interactive=False, verbosity=0)


def engine_config(env_id: str, *, render_mode: str | None, env_kwargs: dict | None, allow_env: tuple[str, ...],
                  enable_run_manager: bool, num_episodes: int, max_steps_per_episode: int,
                  success_threshold: float | None, **engine_options: Any):
    from gymenv.catalogue import operator_env_id
    from gymenv.engine import EngineConfig
    from runs.manager import RunConfig

    run = RunConfig(num_episodes=num_episodes, max_steps_per_episode=max_steps_per_episode,
                    success_threshold=success_threshold) if enable_run_manager else None
    return EngineConfig(default_env_id=operator_env_id(env_id), allowed_env_ids=tuple(allow_env),
                        env_kwargs=dict(env_kwargs or {}), render_mode=render_mode, run=run, **engine_options)


class GymService:
    """The default instance of an env, in-process: each method returns the REST body as a dict
    (errors too: `{"success": False, "error": ..., "code": ...}`), and every step is recorded."""

    def __init__(self, env_id: str, *, render_mode: str | None = None, env_kwargs: dict | None = None,
                 enable_run_manager: bool = True, num_episodes: int = 10, max_steps_per_episode: int = 1000,
                 success_threshold: float | None = None):
        from gymenv.engine import DEFAULT_INSTANCE, Engine

        setup_django()
        self.engine = Engine(engine_config(
            env_id, render_mode=render_mode, env_kwargs=env_kwargs, allow_env=(),
            enable_run_manager=enable_run_manager, num_episodes=num_episodes,
            max_steps_per_episode=max_steps_per_episode, success_threshold=success_threshold))
        self.engine.start()
        self.instance = self.engine.get(DEFAULT_INSTANCE)

    def _call(self, fn, *args) -> dict:
        """On the owner thread; a refusal comes back as the REST error body."""
        return self._answer(self.instance.call_sync, fn, *args)

    @staticmethod
    def _answer(fn, *args) -> dict:
        from gymenv.errors import GymsiteError

        try:
            return fn(*args)
        except GymsiteError as err:
            return {"success": False, "error": err.message, "code": err.code}

    def reset(self, seed: int | None = None, options: dict | None = None) -> dict:
        return self._call(self.instance.op_reset, seed, options)

    def step(self, action: Any) -> dict:
        return self._call(self.instance.op_step, action)

    def render(self, mode: str | None = None) -> dict:
        return self._call(self.instance.op_render, mode)

    def sample(self) -> dict:
        return self._call(self.instance.op_sample)

    def info(self) -> dict:
        return {"success": True, "env_info": self.instance.env_info()}

    def close(self) -> dict:
        return self._call(self.instance.op_close)

    def run_status(self) -> dict:
        return self._run_call("status")

    def run_statistics(self) -> dict:
        return self._run_call("statistics")

    def reset_run(self) -> dict:
        return self._run_call("reset")

    def _run_call(self, name: str) -> dict:
        return self._answer(lambda: {"success": True, **getattr(
            self.engine.run_manager(self.instance.instance_id), name)()})

    def shutdown(self) -> None:
        """Close the env and end the run (a running run is kept as interrupted)."""
        self.engine.shutdown()

    def __enter__(self) -> GymService:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()


class GymHTTPServer:
    """REST, MCP, the admin and the ledger for one env on one port, as `runserver_gym` serves them."""

    def __init__(self, env_id: str, *, token: str | None = None, **options: Any):
        self.env_id = env_id
        self.token = token
        self.options = {"render_mode": None, "env_kwargs": None, "allow_env": (), "enable_run_manager": True,
                        "num_episodes": 10, "max_steps_per_episode": 1000, "success_threshold": None, **options}

    def run(self, host: str = "127.0.0.1", port: int = 8000) -> None:
        from gymenv.engine import Engine
        from gymenv.management.commands.runserver_gym import Command
        from gymsite.asgi import create_app

        setup_django()
        Command.check_exposure(host, self.token, insecure=False)
        Command.configure(host, self.token)
        sock = Command.bind(host, port)
        engine = Engine(engine_config(self.env_id, **self.options))
        engine.start()
        serve(create_app(engine=engine), sock)


def serve(app, sock: socket.socket) -> None:
    """Run the ASGI app under uvicorn on an already-bound socket until SIGINT/SIGTERM."""
    import signal
    import threading

    import uvicorn

    config = uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=10)
    # uvicorn shuts down gracefully, restores the previous handlers, then re-raises the signal
    # into them: make that re-raise a clean exit instead of a -15 or a KeyboardInterrupt traceback.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass


def _exit_cleanly(signum, frame) -> None:
    raise SystemExit(0)
