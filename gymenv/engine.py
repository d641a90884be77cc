"""The env engine: live instances, each driven by its own owner thread; every REST and MCP answer is made here."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import math
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

import gymnasium as gym
import numpy as np

from gymenv import catalogue, spaces
from gymenv.errors import (
    Conflict,
    EnvFailed,
    EpisodeOver,
    GymsiteError,
    InvalidAction,
    InvalidArgument,
    NotFound,
    ResetRequired,
    TooManyInstances,
)

if TYPE_CHECKING:
    from runs.manager import RunConfig, RunManager

log = logging.getLogger(__name__)

DEFAULT_INSTANCE = "default"
MAX_SEED = 2**128  # numpy's SeedSequence takes any non-negative int; bound the work a client can ask for


@dataclass(frozen=True)
class EngineConfig:
    default_env_id: str
    allowed_env_ids: tuple[str, ...] = ()
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    render_mode: str | None = None
    allow_env_kwargs: bool = False
    max_instances: int = 64
    idle_timeout: float = 3600.0
    max_env_kwargs_bytes: int = 4096
    run: RunConfig | None = None  # None: the run manager is off

    def __post_init__(self):
        # The default env is always allowed; keep the operator's order, no duplicates.
        ids = dict.fromkeys((self.default_env_id, *self.allowed_env_ids))
        object.__setattr__(self, "allowed_env_ids", tuple(ids))


class Instance:
    """One live env. Every env call runs on this instance's owner thread, in order."""

    def __init__(self, *, instance_id: str, env_id: str, env_kwargs: dict, render_mode: str | None,
                 run_config: RunConfig | None):
        self.instance_id = instance_id
        self.env_id = env_id
        self.env_kwargs = env_kwargs
        self.render_mode = render_mode
        self.run_config = run_config
        self.run: RunManager | None = None
        self.env: gym.Env | None = None
        self.action_space: gym.Space | None = None
        self.observation_space: gym.Space | None = None
        self.needs_reset = True
        self.episode_over = False
        self.created_at = self.last_used_at = time.time()
        self.in_flight = 0
        # MuJoCo and other GL renderers give black frames off the thread that first rendered.
        self._owner = OwnerThread(f"env-{instance_id[:12]}")

    # -- calling into the owner thread ------------------------------------------------------

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        future: Future = Future()
        self._enqueue(fn, args, future.set_result, future.set_exception)
        return future

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def resolve(setter: Callable, value: Any) -> None:
            if not future.cancelled():  # the client went away; the call itself still ran
                setter(value)

        self._enqueue(fn, args, lambda value: loop.call_soon_threadsafe(resolve, future.set_result, value),
                      lambda exc: loop.call_soon_threadsafe(resolve, future.set_exception, exc))
        return await future

    def call_sync(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.submit(fn, *args).result()

    def _enqueue(self, fn: Callable, args: tuple, on_result: Callable, on_error: Callable) -> None:
        self.last_used_at = time.time()
        self.in_flight += 1

        def run() -> None:
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
                self._done()
                on_error(exc)
            else:
                self._done()
                on_result(result)

        self._owner.put(run)

    def _done(self) -> None:
        self.in_flight -= 1
        self.last_used_at = time.time()

    # -- operations: run on the owner thread only -------------------------------------------

    def op_open(self) -> None:
        """Make the env (first open, or after close) and, once, the run manager."""
        # Only pass render_mode when there is one: some envs' constructors do not take it at all.
        mode = {"render_mode": self.render_mode} if self.render_mode else {}
        self.env = gym.make(self.env_id, **mode, **self.env_kwargs)
        self.action_space = self.env.action_space
        self.observation_space = self.env.observation_space
        catalogue.env_description(self.env_id)  # warm the docs cache here, off the event loop
        if self.run_config is not None and self.run is None:
            from runs.manager import RunManager

            spec = self.env.spec
            self.run = RunManager(
                instance_id=self.instance_id,
                env_id=self.env_id,
                env_kwargs=self.env_kwargs,
                env_spec=catalogue.spec_json(spec) if spec else None,
                reward_threshold=spec.reward_threshold if spec else None,
                config=self.run_config,
            )

    def op_reset(self, seed: int | None = None, options: dict | None = None) -> dict:
        check_seed(seed)
        if options is not None and not isinstance(options, dict):
            raise InvalidArgument("options must be a JSON object or null")
        if self.run is not None:
            self.run.before_reset()
        if self.env is None:
            self.op_open()
        try:
            obs, info = self.env.reset(seed=seed, options=options)
        except Exception as exc:  # noqa: BLE001 - whatever the env raises is reported, not fatal
            raise self._env_failed(exc) from exc
        body = {
            "success": True,
            "observation": spaces.encode(self.observation_space, obs),
            "info": spaces.to_json(info),
            "done": False,
        }
        if self.run is not None:
            body["run_progress"] = self.run.on_reset(seed=seed, observation=body["observation"], info=body["info"])
        self.needs_reset = False
        self.episode_over = False
        return body

    def op_step(self, data: Any) -> dict:
        if self.env is None or self.needs_reset:
            raise ResetRequired("call reset before step: this instance has no episode in progress")
        if self.episode_over:
            raise EpisodeOver("the episode is over (terminated or truncated); call reset to start the next one")
        try:
            action = spaces.decode(self.action_space, data)
        except spaces.ActionError as exc:
            raise InvalidAction(str(exc)) from None
        if self.run is not None:
            self.run.before_step()
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
        except Exception as exc:  # noqa: BLE001
            raise self._env_failed(exc) from exc
        reward = float(reward)
        body = {
            "success": True,
            "observation": spaces.encode(self.observation_space, obs),
            "reward": reward if math.isfinite(reward) else None,
            "terminated": bool(terminated),
            "truncated": bool(truncated),
            "done": False,
            "info": spaces.to_json(info),
        }
        if self.run is not None:
            body["truncated"], body["run_progress"] = self.run.on_step(
                action=data, observation=body["observation"], reward=reward,
                terminated=body["terminated"], truncated=body["truncated"], info=body["info"],
            )
        body["done"] = self.episode_over = body["terminated"] or body["truncated"]
        return body

    def op_render(self, mode: str | None = None) -> dict:
        if mode is not None and not isinstance(mode, str):
            raise InvalidArgument("mode must be a string or null")
        if mode is not None and mode != self.render_mode:
            if self.render_mode is None:
                raise InvalidArgument(f"this {self.env_id} instance was opened without a render mode; "
                                      f"open one with render_mode in {catalogue.render_modes(self.env_id)}")
            raise InvalidArgument(f"this instance renders {self.render_mode!r}, not {mode[:40]!r}; open an instance "
                                  f"with render_mode={mode[:40]!r} for that (supported: {catalogue.render_modes(self.env_id)})")
        if self.render_mode is None:
            raise InvalidArgument(f"this {self.env_id} instance has no render mode; "
                                  f"supported: {catalogue.render_modes(self.env_id) or 'none'}")
        if self.env is None or self.needs_reset:
            raise ResetRequired("call reset before render: this instance has no episode in progress")
        try:
            frame = self.env.render()
        except Exception as exc:  # noqa: BLE001
            raise EnvFailed(f"{self.env_id} failed to render: {type(exc).__name__}: {exc}") from exc
        if isinstance(frame, np.ndarray):
            return {"success": True, "mode": self.render_mode, "type": "image_base64", "format": "png",
                    "render": base64.b64encode(png_bytes(frame)).decode("ascii"), "shape": list(frame.shape)}
        text = frame.getvalue() if isinstance(frame, io.StringIO) else str(frame)
        return {"success": True, "mode": self.render_mode, "type": "text", "format": None, "render": text,
                "shape": None}

    def op_close(self) -> dict:
        if self.env is not None:
            env, self.env = self.env, None
            env.close()
        self.needs_reset = True
        self.episode_over = False
        return {"success": True, "status": "closed"}

    def op_sample(self) -> dict:
        return {"success": True, "action": spaces.encode(self.action_space, self.action_space.sample())}

    def op_dispose(self, reason: str) -> None:
        """Last call on the owner thread: end the run, close the env, drop this thread's DB connection."""
        try:
            if self.run is not None:
                self.run.close(reason)
            self.op_close()
        finally:
            from django.db import connections

            connections.close_all()

    def _env_failed(self, exc: Exception) -> EnvFailed:
        message = f"{self.env_id} raised {type(exc).__name__}: {exc}"
        self.needs_reset = True
        if self.run is not None:
            self.run.on_error(message)
        return EnvFailed(message)

    # -- read-only views (safe from any thread: they read what the owner thread set) -----------

    def env_info(self) -> dict:
        return {"id": self.env_id, "instance_id": self.instance_id, "render_mode": self.render_mode,
                **describe_env(self.env_id, self.action_space, self.observation_space)}

    def summary(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "env_id": self.env_id,
            "render_mode": self.render_mode,
            "created_at": _iso(self.created_at),
            "last_used_at": _iso(self.last_used_at),
            "needs_reset": self.needs_reset,
            "episode_over": self.episode_over,
            "run_id": self.run.run_id if self.run is not None else None,
        }

    def shutdown_thread(self) -> None:
        self._owner.stop()


class OwnerThread:
    """One thread running the calls put to it, in order.

    Leaner than a one-worker ThreadPoolExecutor plus asyncio.wrap_future: on the step path the
    hand-off to this thread and back is most of what the engine adds to a request.
    """

    _STOP = object()

    def __init__(self, name: str):
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, call: Callable[[], None]) -> None:
        self._calls.put(call)

    def stop(self) -> None:
        """Ends the thread after the calls already queued."""
        self._calls.put(self._STOP)

    def _run(self) -> None:
        while (call := self._calls.get()) is not self._STOP:
            call()


def png_bytes(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    # Level 1: frames are served live; a smaller PNG is not worth several times the CPU.
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def describe_env(env_id: str, action_space: gym.Space, observation_space: gym.Space) -> dict:
    """What an agent needs to know about an env: its spaces, the action schema, its limits and docs."""
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


_catalogue_lock = threading.Lock()
_catalogue: dict[str, dict] = {}


def catalogue_entry(env_id: str) -> dict:
    """Spaces, schema and docs of an env id, from one throwaway make (cached for the process)."""
    with _catalogue_lock:
        if env_id in _catalogue:
            return _catalogue[env_id]
    env = gym.make(env_id)
    try:
        entry = {"env_id": env_id, **describe_env(env_id, env.action_space, env.observation_space)}
    finally:
        env.close()
    with _catalogue_lock:
        return _catalogue.setdefault(env_id, entry)


class Engine:
    """The registry of live instances and the async/sync entry points REST, MCP and GymService use."""

    def __init__(self, config: EngineConfig):
        self.config = config
        self._instances: dict[str, Instance] = {}
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the default instance; raises what gymnasium raises for a bad id or a missing dependency."""
        if self.config.run is not None:
            from runs.services import runs_interrupt_stale

            runs_interrupt_stale()
        inst = self._new_instance(DEFAULT_INSTANCE, self.config.default_env_id, self.config.env_kwargs,
                                  catalogue.pick_render_mode(self.config.default_env_id, self.config.render_mode),
                                  self.config.run)
        try:
            inst.call_sync(inst.op_open)
        except BaseException:
            self._forget(inst.instance_id)
            inst.call_sync(inst.op_dispose, "failed to start")
            inst.shutdown_thread()
            raise

    def shutdown(self, reason: str = "interrupted") -> None:
        with self._lock:
            instances, self._instances = list(self._instances.values()), {}
        futures = [inst.submit(inst.op_dispose, reason) for inst in instances]
        for inst, future in zip(instances, futures):
            try:
                future.result(timeout=30)
            except Exception:  # noqa: BLE001 - one stubborn env must not keep the others open
                log.exception("closing instance %s failed", inst.instance_id)
            inst.shutdown_thread()

    def reap_idle(self, now: float | None = None) -> list[str]:
        """Close and forget client instances unused for longer than the idle timeout (as of `now`)."""
        cutoff = (time.time() if now is None else now) - self.config.idle_timeout
        with self._lock:
            idle = [i for i in self._instances.values()
                    if i.instance_id != DEFAULT_INSTANCE and i.in_flight == 0 and i.last_used_at < cutoff]
            for inst in idle:
                del self._instances[inst.instance_id]
        for inst in idle:
            inst.submit(inst.op_dispose, "closed after being idle")
            inst.shutdown_thread()
            log.info("closed idle instance %s (%s)", inst.instance_id, inst.env_id)
        return [i.instance_id for i in idle]

    # -- instances ------------------------------------------------------------------------------

    def get(self, instance_id: str) -> Instance:
        try:
            return self._instances[instance_id]
        except (KeyError, TypeError):
            raise NotFound(f"no instance {str(instance_id)[:80]!r}; GET /envs lists the live ones") from None

    def run_manager(self, instance_id: str) -> RunManager:
        """The instance's run manager; a 404 when the run manager is off (REST and MCP answer alike)."""
        run = self.get(instance_id).run
        if run is None:
            raise NotFound("the run manager is off on this server (--no-run-manager): no runs are tracked",
                           code="run_manager_disabled")
        return run

    def list(self) -> dict:
        return {"success": True, "instances": [i.summary() for i in list(self._instances.values())]}

    def check_create(self, env_id: str | None, env_kwargs: Any, render_mode: str | None) -> tuple[str, dict, str | None]:
        """Everything a client asks for when opening an instance, checked before anything is made."""
        env_id = self.config.default_env_id if env_id is None else catalogue.check_client_env_id(
            env_id, self.config.allowed_env_ids)
        if env_kwargs:
            if not self.config.allow_env_kwargs:
                raise InvalidArgument("env_kwargs are refused: the operator did not pass --allow-env-kwargs")
            if not isinstance(env_kwargs, dict):
                raise InvalidArgument("env_kwargs must be a JSON object")
            if len(json.dumps(env_kwargs)) > self.config.max_env_kwargs_bytes:
                raise InvalidArgument(f"env_kwargs must be at most {self.config.max_env_kwargs_bytes} bytes of JSON")
            if "render_mode" in env_kwargs:
                raise InvalidArgument("pass render_mode as its own field, not inside env_kwargs")
        elif env_id == self.config.default_env_id:
            env_kwargs = self.config.env_kwargs  # the operator's kwargs for the operator's env
        return env_id, dict(env_kwargs or {}), catalogue.pick_render_mode(env_id, render_mode)

    def create_sync(self, *, env_id: str | None = None, env_kwargs: Any = None, render_mode: str | None = None,
                    num_episodes: int | None = None, max_steps_per_episode: int | None = None) -> Instance:
        env_id, env_kwargs, render_mode = self.check_create(env_id, env_kwargs, render_mode)
        run_config = self._run_config(num_episodes, max_steps_per_episode)
        self.reap_idle()
        inst = self._new_instance(uuid.uuid4().hex[:12], env_id, env_kwargs, render_mode, run_config)
        try:
            inst.call_sync(inst.op_open)
        except Exception as exc:
            self._forget(inst.instance_id)
            inst.submit(inst.op_dispose, "failed to open")
            inst.shutdown_thread()
            if isinstance(exc, GymsiteError):
                raise
            raise InvalidArgument(f"could not make {env_id}: {type(exc).__name__}: {exc}") from exc
        return inst

    async def create(self, **kwargs: Any) -> dict:
        # Making an env can take seconds (MuJoCo, Atari ROMs): never on the event loop.
        inst = await asyncio.to_thread(lambda: self.create_sync(**kwargs))
        return {"success": True, **inst.summary()}

    async def delete(self, instance_id: str) -> dict:
        if instance_id == DEFAULT_INSTANCE:
            raise Conflict("the default instance cannot be deleted; POST /close closes its env", code="default_instance")
        inst = self.get(instance_id)
        self._forget(instance_id)
        await inst.call(inst.op_dispose, "instance deleted")
        inst.shutdown_thread()
        return {"success": True, "instance_id": instance_id, "status": "deleted"}

    def _run_config(self, num_episodes: int | None, max_steps: int | None) -> RunConfig | None:
        base = self.config.run
        if base is None:
            if num_episodes is not None or max_steps is not None:
                raise InvalidArgument("num_episodes and max_steps_per_episode need the run manager, which is off")
            return None
        return replace(base, num_episodes=num_episodes or base.num_episodes,
                       max_steps_per_episode=max_steps or base.max_steps_per_episode)

    def _new_instance(self, instance_id: str, env_id: str, env_kwargs: dict, render_mode: str | None,
                      run_config: RunConfig | None) -> Instance:
        with self._lock:
            if len(self._instances) >= self.config.max_instances:
                raise TooManyInstances(f"this server keeps at most {self.config.max_instances} live instances; "
                                       "DELETE /envs/{id} one you no longer need")
            inst = Instance(instance_id=instance_id, env_id=env_id, env_kwargs=env_kwargs,
                            render_mode=render_mode, run_config=run_config)
            self._instances[instance_id] = inst
        return inst

    def _forget(self, instance_id: str) -> None:
        with self._lock:
            self._instances.pop(instance_id, None)

    # -- env operations (async for REST and MCP) ----------------------------------------------------

    async def reset(self, instance_id: str, seed: int | None = None, options: dict | None = None) -> dict:
        inst = self.get(instance_id)
        return await inst.call(inst.op_reset, seed, options)

    async def step(self, instance_id: str, action: Any) -> dict:
        inst = self.get(instance_id)
        return await inst.call(inst.op_step, action)

    async def render(self, instance_id: str, mode: str | None = None) -> dict:
        inst = self.get(instance_id)
        return await inst.call(inst.op_render, mode)

    async def close(self, instance_id: str) -> dict:
        inst = self.get(instance_id)
        return await inst.call(inst.op_close)

    async def sample(self, instance_id: str) -> dict:
        inst = self.get(instance_id)
        return await inst.call(inst.op_sample)

    async def info(self, instance_id: str) -> dict:
        inst = self.get(instance_id)
        # Describing a space is pure Python on objects that never change after make: no owner-thread hop.
        return {"success": True, "env_info": inst.env_info()}

    def catalogue(self) -> dict[str, dict]:
        return {env_id: catalogue_entry(env_id) for env_id in self.config.allowed_env_ids}


def check_seed(seed: Any) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
        raise InvalidArgument(f"seed must be null or an integer from 0 to 2**128-1, got {str(seed)[:40]!r}")


_engine: Engine | None = None


def set_engine(engine: Engine | None) -> None:
    global _engine
    _engine = engine


def get_engine() -> Engine:
    if _engine is None:
        raise RuntimeError("the gymsite engine is not configured: start it with runserver_gym, GymService or create_app")
    return _engine
