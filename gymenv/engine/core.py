"""The engine: the registry of live instances and the entry points REST, MCP and GymService call."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from gymenv import catalogue
from gymenv.engine.backends import InstanceMap, LocalInstances
from gymenv.engine.describe import catalogue_entry
from gymenv.engine.instance import Instance, Progress
from gymenv.engine.recorder import EpisodeRecorder, RecorderFactory, RunOrigin, RunOrigins, RunPolicy
from gymenv.engine.vector import VectorOptions
from gymenv.env_kwargs import check_client_env_kwargs
from gymenv.schemas import (
    BatchStepOut,
    CloseOut,
    DeletedOut,
    EnvInfoOut,
    InstanceListOut,
    InstanceOut,
    RenderOut,
    ResetOut,
    SampleOut,
    StepOut,
)
from gymsite.errors import (
    DefaultInstanceKept,
    GymsiteError,
    InstanceLimit,
    InvalidArgument,
    RunTrackingOff,
    UnknownInstance,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
DEFAULT_INSTANCE = "default"


@dataclass(frozen=True)
class EngineConfig:
    """What the engine is allowed to do. Built by the composition root (gymsite/serving.py), which
    owns every default; with no recorder factory the run manager is off."""

    default_env_id: str
    allowed_env_ids: tuple[str, ...]
    env_kwargs: dict[str, Any]
    render_mode: str | None
    allow_env_kwargs: bool
    env_kwargs_keys: frozenset[str]  # keys whose names or values may look like paths (the operator's list)
    max_instances: int
    evict_idle: bool  # at max_instances, close the least recently used idle client instance instead of 429
    idle_timeout: float
    max_env_kwargs_bytes: int
    call_timeout: float
    run: RunPolicy | None
    recorder_factory: RecorderFactory | None
    max_batch: int  # actions in one batched step
    max_num_envs: int  # sub-envs of one vector instance
    # Resume and fork (SPEC 14): the ledger's recorded runs an instance can start from; None without a ledger.
    run_origins: RunOrigins | None = None
    # Where instances live (gymenv/engine/backends.py): in this process by default, or Ray actors.
    backend: Callable[[], InstanceMap] = LocalInstances

    def __post_init__(self):
        # The default env is always allowed; keep the operator's order, no duplicates.
        ids = dict.fromkeys((self.default_env_id, *self.allowed_env_ids))
        object.__setattr__(self, "allowed_env_ids", tuple(ids))
        if self.recorder_factory is None:
            object.__setattr__(self, "run", None)
            object.__setattr__(self, "run_origins", None)


class Engine:
    def __init__(self, config: EngineConfig):
        self.config = config
        self._instances: InstanceMap = config.backend()
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Open the default instance; raises what gymnasium raises for a bad id or a missing dependency."""
        inst = self._new_instance(DEFAULT_INSTANCE, self.config.default_env_id, self.config.env_kwargs,
                                  catalogue.pick_render_mode(self.config.default_env_id, self.config.render_mode),
                                  self.config.run)
        try:
            inst.call_sync(inst.op_open)
        except BaseException:
            self._forget(inst.instance_id)
            self._retire_and_wait([inst], "failed to start")
            raise

    def shutdown(self, reason: str = "server shut down") -> None:
        with self._lock:
            instances = self._instances.detach_all()
        self._retire_and_wait(instances, reason)

    def reap_idle(self, now: float | None = None) -> list[str]:
        """Close and forget client instances unused for longer than the idle timeout."""
        cutoff = (time.time() if now is None else now) - self.config.idle_timeout
        reaped = []
        with self._lock:
            for inst in list(self._instances.values()):
                if inst.instance_id == DEFAULT_INSTANCE:
                    continue
                if inst.retire("closed after being idle", idle_before=cutoff) is not None:
                    del self._instances[inst.instance_id]
                    reaped.append(inst)
        for inst in reaped:
            log.info("closed idle instance %s (%s)", inst.instance_id, inst.env_id)
        return [i.instance_id for i in reaped]

    def _retire_and_wait(self, instances: list[Instance], reason: str) -> None:
        futures = [(inst, inst.retire(reason)) for inst in instances]
        for inst, future in futures:
            if future is None:
                continue
            try:
                future.result(timeout=inst.call_timeout)
            except Exception:
                log.exception("closing instance %s failed", inst.instance_id)

    # -- instances ------------------------------------------------------------------------------

    def get(self, instance_id: str) -> Instance:
        try:
            return self._instances[instance_id]
        except (KeyError, TypeError):
            raise UnknownInstance(f"no instance {str(instance_id)[:80]!r}") from None

    def run_manager(self, instance_id: str) -> EpisodeRecorder:
        """The instance's recorder; refused alike on REST and MCP when the run manager is off."""
        run = self.get(instance_id).run
        if run is None:
            raise RunTrackingOff("the run manager is off on this server (--no-run-manager): no runs are tracked")
        return run

    def instances(self) -> list[Instance]:
        return list(self._instances.values())

    def list(self) -> InstanceListOut:
        return InstanceListOut(instances=[i.summary() for i in self.instances()])

    def check_create(self, env_id: str | None, env_kwargs: Any,
                     render_mode: str | None) -> tuple[str, dict, str | None]:
        """Everything a client asks for when opening an instance, checked before anything is made."""
        env_id = self.config.default_env_id if env_id is None else catalogue.check_client_env_id(
            env_id, self.config.allowed_env_ids)
        if env_kwargs:
            if not self.config.allow_env_kwargs:
                raise InvalidArgument("env_kwargs are refused: the operator did not pass --allow-env-kwargs")
            env_kwargs = check_client_env_kwargs(env_kwargs, allowed_keys=self.config.env_kwargs_keys,
                                                 max_bytes=self.config.max_env_kwargs_bytes)
        elif env_id == self.config.default_env_id:
            env_kwargs = self.config.env_kwargs  # the operator's kwargs for the operator's env
        return env_id, dict(env_kwargs or {}), catalogue.pick_render_mode(env_id, render_mode)

    def create_sync(self, *, env_id: str | None = None, env_kwargs: Any = None, render_mode: str | None = None,
                    num_episodes: int | None = None, max_steps_per_episode: int | None = None,
                    obs_format: str | None = None, num_envs: int | None = None,
                    vectorization_mode: str | None = None, autoreset_mode: str | None = None,
                    resume_run: str | None = None, fork_from: dict | None = None) -> Instance:
        vector = origin = None
        if num_envs is not None or vectorization_mode is not None or autoreset_mode is not None:
            if num_envs is None:
                raise InvalidArgument("vectorization_mode and autoreset_mode open a vector instance: give num_envs too")
            if resume_run is not None or fork_from is not None:
                raise InvalidArgument("resume_run and fork_from open a single-env instance: leave out num_envs, "
                                      "vectorization_mode and autoreset_mode")
            vector = VectorOptions.checked(num_envs=num_envs, vectorization_mode=vectorization_mode,
                                           autoreset_mode=autoreset_mode, max_num_envs=self.config.max_num_envs,
                                           render_mode=render_mode)
        if resume_run is not None or fork_from is not None:
            origin = self._origin(resume_run, fork_from, env_id=env_id, env_kwargs=env_kwargs,
                                  num_episodes=num_episodes, max_steps_per_episode=max_steps_per_episode)
            env_id = catalogue.check_client_env_id(origin.env_id, self.config.allowed_env_ids)
            env_kwargs, render_mode = origin.env_kwargs, catalogue.pick_render_mode(env_id, render_mode)
            policy: RunPolicy | None = origin.policy
        else:
            env_id, env_kwargs, render_mode = self.check_create(env_id, env_kwargs, render_mode)
            if vector is not None:
                render_mode = None  # the env's best mode would be picked: vector instances do not render
            policy = self._policy(num_episodes, max_steps_per_episode)
        self.reap_idle()
        inst = self._new_instance(uuid.uuid4().hex[:12], env_id, env_kwargs, render_mode, policy, obs_format, vector,
                                  origin)
        try:
            inst.call_sync(inst.op_open)
        except Exception as exc:
            self._forget(inst.instance_id)
            inst.retire("failed to open")
            if isinstance(exc, GymsiteError):
                raise
            raise InvalidArgument(f"could not make {env_id}: {type(exc).__name__}: {exc}") from exc
        return inst

    def _origin(self, resume_run: str | None, fork_from: dict | None, **others: Any) -> RunOrigin:
        if self.config.run_origins is None:
            raise RunTrackingOff("resume_run and fork_from need the run manager, which is off (--no-run-manager)")
        if resume_run is not None and fork_from is not None:
            raise InvalidArgument("give resume_run or fork_from, not both")
        given = [name for name, value in others.items() if value is not None]
        if given:
            raise InvalidArgument(f"{', '.join(given)} cannot be combined with resume_run or fork_from: "
                                  "the recorded run's own are used")
        if resume_run is not None:
            return self.config.run_origins(resume_run=resume_run)
        return self.config.run_origins(fork_from=fork_from)

    async def create(self, **kwargs: Any) -> InstanceOut:
        # Making an env can take seconds (MuJoCo, Atari ROMs): never on the event loop.
        inst = await asyncio.to_thread(lambda: self.create_sync(**kwargs))
        return InstanceOut(**inst.summary().model_dump())

    async def delete(self, instance_id: str) -> DeletedOut:
        if instance_id == DEFAULT_INSTANCE:
            raise DefaultInstanceKept("the default instance cannot be deleted")
        inst = self.get(instance_id)
        self._forget(instance_id)
        future = inst.retire("instance deleted")
        if future is not None:
            await asyncio.wait_for(asyncio.wrap_future(future), inst.call_timeout)
        return DeletedOut(instance_id=instance_id)

    def _policy(self, num_episodes: int | None, max_steps: int | None) -> RunPolicy | None:
        base = self.config.run
        if base is None:
            if num_episodes is not None or max_steps is not None:
                raise InvalidArgument("num_episodes and max_steps_per_episode need the run manager, which is off")
            return None
        return replace(base, num_episodes=base.num_episodes if num_episodes is None else num_episodes,
                       max_steps_per_episode=max_steps or base.max_steps_per_episode)

    def _new_instance(self, instance_id: str, env_id: str, env_kwargs: dict, render_mode: str | None,
                      policy: RunPolicy | None, obs_format: str | None = None,
                      vector: VectorOptions | None = None, origin: RunOrigin | None = None) -> Instance:
        with self._lock:
            if len(self._instances) >= self.config.max_instances and not self._evict_one():
                raise InstanceLimit(f"this server keeps at most {self.config.max_instances} live instances")
            inst = self._instances.make(instance_id=instance_id, env_id=env_id, env_kwargs=env_kwargs,
                                        render_mode=render_mode, policy=policy,
                                        recorder_factory=self.config.recorder_factory,
                                        call_timeout=self.config.call_timeout, obs_format=obs_format,
                                        vector=vector, origin=origin)
            self._instances[instance_id] = inst
        return inst

    def _evict_one(self) -> bool:
        """With --evict-idle, close the least recently used client instance with no call in flight
        (called with the lock held); False when there is none or eviction is off."""
        if not self.config.evict_idle:
            return False
        clients = sorted((i for i in self._instances.values() if i.instance_id != DEFAULT_INSTANCE),
                         key=lambda i: i.last_used_at)
        for inst in clients:
            if inst.retire("evicted to make room for a new instance", idle_before=time.time()) is not None:
                del self._instances[inst.instance_id]
                log.info("evicted idle instance %s (%s) to make room", inst.instance_id, inst.env_id)
                return True
        return False

    def _forget(self, instance_id: str) -> None:
        with self._lock:
            self._instances.pop(instance_id, None)

    # -- env operations (async for REST and MCP) ----------------------------------------------------

    async def _on_owner(self, instance_id: str, op: Callable[[Instance], Callable[..., T]], *args: Any) -> T:
        inst = self.get(instance_id)
        return await inst.call(op(inst), *args)

    async def reset(self, instance_id: str, seed: int | None = None, options: dict | None = None,
                    obs_format: str | None = None, expected_episode: int | None = None) -> ResetOut:
        return await self._on_owner(instance_id, lambda i: i.op_reset, seed, options, obs_format, expected_episode)

    async def step(self, instance_id: str, action: Any, obs_format: str | None = None,
                   expected_step: int | None = None) -> StepOut:
        return await self._on_owner(instance_id, lambda i: i.op_step, action, obs_format, expected_step)

    async def step_batch(self, instance_id: str, actions: Any, obs_format: str | None = None, last_only: bool = False,
                         progress: Progress | None = None, expected_step: int | None = None) -> BatchStepOut:
        """SPEC 11: up to max_batch actions in one call (checked here, before the owner thread is asked)."""
        if not isinstance(actions, list) or not 1 <= len(actions) <= self.config.max_batch:
            given = f"{len(actions)} actions" if isinstance(actions, list) else f"a {type(actions).__name__}"
            raise InvalidArgument(f"actions must be a list of 1 to {self.config.max_batch} actions "
                                  f"(this server's --max-batch), got {given}")
        return await self._on_owner(instance_id, lambda i: i.op_step_batch, actions, obs_format, last_only, progress,
                                    expected_step)

    async def render(self, instance_id: str, mode: str | None = None) -> RenderOut:
        return await self._on_owner(instance_id, lambda i: i.op_render, mode)

    async def close(self, instance_id: str) -> CloseOut:
        return await self._on_owner(instance_id, lambda i: i.op_close)

    async def sample(self, instance_id: str) -> SampleOut:
        return await self._on_owner(instance_id, lambda i: i.op_sample)

    async def info(self, instance_id: str) -> EnvInfoOut:
        # Describing a space is pure Python on objects that never change after make: no owner-thread hop.
        return EnvInfoOut(env_info=self.get(instance_id).env_info())

    def catalogue(self) -> dict[str, dict]:
        return {env_id: catalogue_entry(env_id) for env_id in self.config.allowed_env_ids}
