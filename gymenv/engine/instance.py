"""One live env instance: its owner thread, its operations and its recorder."""

from __future__ import annotations

import asyncio
import base64
import io
import math
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec

from gymenv import catalogue, meanings, spaces
from gymenv.engine.describe import describe_env
from gymenv.engine.owner import OwnerThread
from gymenv.engine.recorder import EpisodeRecorder, RecorderFactory, RecorderSpec, RunOrigin, RunPolicy
from gymenv.engine.retries import LastAnswer
from gymenv.observations import Observation, check_format, default_format, png_bytes
from gymenv.schemas import MAX_SEED, BatchStepOut, CloseOut, EnvInfo, RenderOut, ResetOut, SampleOut, StepOut
from gymenv.schemas import Instance as InstanceSummary
from gymenv.spaces.messages import clip
from gymsite.errors import (
    EnvFailed,
    EnvTimeout,
    EpisodeOver,
    InvalidAction,
    InvalidArgument,
    ResetRequired,
)

T = TypeVar("T")
Progress = Callable[[int, int], None]  # (steps taken, steps asked): called from the owner thread
PROGRESS_EVERY = 64  # steps between two progress reports of a batch


class Instance:
    """One live env. Every env call runs on this instance's owner thread, in order."""

    num_envs: int | None = None  # a vector instance's sub-envs (gymenv/engine/vector.py)

    def __init__(self, *, instance_id: str, env_id: str, env_kwargs: dict, render_mode: str | None,
                 policy: RunPolicy | None, recorder_factory: RecorderFactory | None, call_timeout: float,
                 obs_format: str | None = None, origin: RunOrigin | None = None):
        self.instance_id = instance_id
        self.requested_obs_format = obs_format  # checked against the observation space once the env is made
        self.obs_format = "json"
        self.env_id = env_id
        self.env_kwargs = env_kwargs
        self.render_mode = render_mode
        self.policy = policy
        self.call_timeout = call_timeout
        self._recorder_factory = recorder_factory if policy is not None else None
        self._origin = origin  # a recorded run to replay and carry on, used by the first op_open only
        self.answers = LastAnswer()
        self.run: EpisodeRecorder | None = None
        self.env: gym.Env | None = None
        self.described: dict | None = None  # describe_env of the live env, from op_open
        self.observation_space: gym.Space | None = None
        self.needs_reset = True
        self.episode_over = False
        self.created_at = self.last_used_at = time.time()
        # Guards in_flight against the reaper: calls are counted from the loop and from the owner thread.
        self._use = threading.Lock()
        self._in_flight = 0
        self._owner = OwnerThread(f"env-{instance_id[:12]}")
        self._deadlines: CallDeadlines | None = None

    # -- calling into the owner thread ------------------------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the owner thread; EnvTimeout past the bound (the call itself still runs)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()

        def resolve(setter: Callable, value: Any) -> None:
            if not future.done():  # cancelled (the client went away) or timed out: the call still ran
                setter(value)

        def hand_back(setter: Callable, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(resolve, setter, value)
            except RuntimeError:  # the loop is closed (its server stopped): nobody is waiting any more
                pass

        self._enqueue(fn, args, lambda value: hand_back(future.set_result, value),
                      lambda exc: hand_back(future.set_exception, exc))
        if self._deadlines is None or self._deadlines.loop is not loop:
            self._deadlines = CallDeadlines(loop, self.call_timeout, self._timeout)
        deadlines = self._deadlines
        deadlines.add(future)
        try:
            return await future
        finally:
            deadlines.discard(future)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future:
        future: Future = Future()
        self._enqueue(fn, args, future.set_result, future.set_exception)
        return future

    def call_sync(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return self.submit(fn, *args).result(timeout=self.call_timeout)
        except FutureTimeout:
            raise self._timeout() from None

    def _timeout(self) -> EnvTimeout:
        return EnvTimeout(f"{self.env_id} (instance {self.instance_id}) did not answer within "
                          f"{self.call_timeout:.0f} s; the call may still finish on the server")

    def _enqueue(self, fn: Callable, args: tuple, on_result: Callable, on_error: Callable) -> None:
        def run() -> None:
            try:
                result = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
                self._finished()
                on_error(exc)
            else:
                self._finished()
                on_result(result)

        with self._use:
            self._owner.put(run)  # raises InstanceClosed once the instance is retired
            self._in_flight += 1
            self.last_used_at = time.time()

    def _finished(self) -> None:
        with self._use:
            self._in_flight -= 1
            self.last_used_at = time.time()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def retire(self, reason: str, *, idle_before: float | None = None) -> Future | None:
        """Close the owner thread to new calls and queue the last one (dispose); its Future, or None
        when the instance was retired already or, with `idle_before`, has been used since then or
        has calls in flight. One lock with _enqueue: no call slips in between the check and the close."""
        future: Future = Future()

        def dispose() -> None:
            try:
                self.op_dispose(reason)
            except BaseException as exc:  # noqa: BLE001
                future.set_exception(exc)
            else:
                future.set_result(None)

        with self._use:
            if idle_before is not None and (self._in_flight or self.last_used_at >= idle_before):
                return None
            return future if self._owner.close(dispose) else None

    def join(self, timeout: float) -> bool:
        return self._owner.join(timeout)

    # -- operations: run on the owner thread only -------------------------------------------

    def op_open(self) -> None:
        """Make the env (first open, or after close) and, once, the recorder."""
        # Only pass render_mode when there is one: some envs' constructors do not take it at all.
        mode: dict[str, Any] = {"render_mode": self.render_mode} if self.render_mode else {}
        self.env = gym.make(self.env_id, **mode, **self.env_kwargs)
        self.observation_space = self.env.observation_space
        self.obs_format = (default_format(self.observation_space) if self.requested_obs_format is None
                           else check_format(self.observation_space, self.requested_obs_format))
        # Here, off the event loop and once per make (it warms the docs cache too): env_info reads it
        # while the env steps, or after close.
        self.described = describe_env(self.env_id, self.env)
        origin, self._origin = self._origin, None
        point = origin.replay(self.env) if origin is not None else None
        self._open_recorder(self.env.spec, origin.recorder if origin is not None else self._recorder_factory)
        if point is not None:  # the env stands where the record left it
            self.answers.place(episode_num=point.episode_num, step_num=point.step_num)
            self.needs_reset = not point.episode_open
            self.episode_over = False
            last = point.last_step
            if last is not None and self.run is not None:
                self.answers.answered_step(StepOut(
                    observation=Observation(self.observation_space, last.observation).wire(self.obs_format),
                    reward=last.reward, terminated=last.terminated, truncated=last.truncated, done=False,
                    info=last.info, run_progress=self.run.progress()), action=last.action)

    def _open_recorder(self, spec: EnvSpec | None, factory: RecorderFactory | None) -> None:
        """The recorder, once per instance (a vector instance's records its num_envs sub-envs)."""
        if factory is not None and self.run is None:
            assert self.policy is not None
            self.run = factory(RecorderSpec(
                instance_id=self.instance_id, env_id=self.env_id, env_kwargs=self.env_kwargs,
                env_spec=catalogue.spec_json(spec) if spec else None,
                reward_threshold=spec.reward_threshold if spec else None, policy=self.policy,
                num_envs=self.num_envs))

    def op_reset(self, seed: int | None = None, options: dict | None = None, obs_format: str | None = None,
                 expected_episode: int | None = None) -> ResetOut:
        check_seed(seed)
        if options is not None and not isinstance(options, dict):
            raise InvalidArgument("options must be a JSON object or null")
        repeated = self.answers.retried_reset(expected_episode, seed, options)
        if repeated is not None:
            return repeated
        requested_seed = seed
        if seed is None and self.run is not None:
            # SPEC 14: every recorded episode is reproducible. Below 2**32: what legacy numpy seeding takes.
            seed = secrets.randbelow(2**32)
        if self.run is not None:
            self.run.before_reset()
        if self.env is None:
            self.op_open()
        env = self._env()
        fmt = self._format(obs_format)
        try:
            obs, info = env.reset(seed=seed, options=options)
        except Exception as exc:
            if options:
                # The env raised on options the client chose: the client's mistake, not the env's, and
                # the run is untouched. A half-reset env is not to be trusted (gymnasium's own checker
                # wrapper fails on its next step): the next reset makes it anew.
                self.op_close()
                raise InvalidArgument(f"{self.env_id} refused the reset options {clip(str(options), 200)}: "
                                      f"{type(exc).__name__}: {clip(str(exc), 200)}") from exc
            raise self._env_failed(exc) from exc
        observation, info_json = Observation(env.observation_space, obs), spaces.to_json(info)
        progress = None
        if self.run is not None:
            progress = self.run.on_reset(seed=seed, options=options, observation=observation, info=info_json)
        self.needs_reset = False
        self.episode_over = False
        answer = ResetOut(observation=observation.wire(fmt), info=info_json, run_progress=progress)
        self.answers.answered_reset(answer, seed=requested_seed, options=options)
        return answer

    def op_step(self, data: Any, obs_format: str | None = None, expected_step: int | None = None) -> StepOut:
        repeated = self.answers.retried_step(expected_step, data)
        if repeated is not None:
            return repeated
        env = self._steppable()
        fmt = self._format(obs_format)
        try:
            action = spaces.decode(env.action_space, data)
        except spaces.ActionError as exc:
            raise InvalidAction(str(exc)) from None
        if self.run is not None:
            self.run.before_step()
        observation, reward, terminated, truncated, info, progress = self._take(env, action, data)
        answer = StepOut(observation=observation.wire(fmt), reward=reward, terminated=terminated, truncated=truncated,
                         done=self.episode_over, info=info, run_progress=progress)
        self.answers.answered_step(answer, action=data)
        return answer

    def op_step_batch(self, data: list, obs_format: str | None = None, last_only: bool = False,
                      progress: Progress | None = None, expected_step: int | None = None) -> BatchStepOut:
        """SPEC 11: the actions in order until the list or the episode ends. Every action is checked
        before the env moves; the recorder commits all the steps taken at once, before the answer."""
        self.answers.check_batch(expected_step)
        env = self._steppable()
        fmt = self._format(obs_format)
        actions = []
        for i, item in enumerate(data):
            try:
                actions.append(spaces.decode(env.action_space, item))
            except spaces.ActionError as exc:
                raise InvalidAction(f"actions[{i}]: {exc}; no action of the batch was taken") from None
        if self.run is not None:
            self.run.before_step()
        observations: list[Observation] = []
        rewards: list[float | None] = []
        terminated: list[bool] = []
        truncated: list[bool] = []
        infos: list[dict] = []
        run_progress = None
        with self.run.batch() if self.run is not None else nullcontext():
            for i, (item, action) in enumerate(zip(data, actions, strict=True), 1):
                observation, reward, term, trunc, info, run_progress = self._take(env, action, item)
                observations.append(observation)
                rewards.append(reward)
                terminated.append(term)
                truncated.append(trunc)
                infos.append(info)
                if self.episode_over:
                    break
                if progress is not None and i % PROGRESS_EVERY == 0:
                    progress(i, len(data))
        self.answers.answered_batch(len(rewards), run_progress)
        if last_only:
            observations, infos = observations[-1:], infos[-1:]
        return BatchStepOut(steps=len(rewards), observations=[o.wire(fmt) for o in observations], rewards=rewards,
                            terminated=terminated, truncated=truncated, infos=infos, done=self.episode_over,
                            run_progress=run_progress)

    def _steppable(self) -> gym.Env:
        if self.env is None or self.needs_reset:
            raise ResetRequired("call reset before step: this instance has no episode in progress")
        if self.episode_over:
            raise EpisodeOver("the episode is over (terminated or truncated); call reset to start the next one")
        return self.env

    def _take(self, env: gym.Env, action: Any, data: Any) -> tuple[Observation, float | None, bool, bool, dict, Any]:
        """One env step of a checked action (`data` as the client sent it) and its record: (observation, the
        reward or None when not finite, terminated, truncated (the run's step limit included), info, run_progress)."""
        try:
            obs, reward, terminated, truncated, info = env.step(action)
        except Exception as exc:
            raise self._env_failed(exc) from exc
        reward = float(reward)
        finite = reward if math.isfinite(reward) else None
        observation, info_json = Observation(env.observation_space, obs), spaces.to_json(info)
        terminated, truncated = bool(terminated), bool(truncated)
        progress = None
        if self.run is not None:
            truncated, progress = self.run.on_step(action=data, observation=observation, reward=finite,
                                                   terminated=terminated, truncated=truncated, info=info_json)
        self.episode_over = terminated or truncated
        return observation, finite, terminated, truncated, info_json, progress

    def op_render(self, mode: str | None = None) -> RenderOut:
        if mode is not None and not isinstance(mode, str):
            raise InvalidArgument("mode must be a string or null")
        if mode is not None and mode != self.render_mode:
            if self.render_mode is None:
                raise InvalidArgument(f"this {self.env_id} instance was opened without a render mode; "
                                      f"open one with render_mode in {catalogue.render_modes(self.env_id)}")
            raise InvalidArgument(f"this instance renders {self.render_mode!r}, not {mode[:40]!r}; open an instance "
                                  f"with render_mode={mode[:40]!r} for that "
                                  f"(supported: {catalogue.render_modes(self.env_id)})")
        if self.render_mode is None:
            raise InvalidArgument(f"this {self.env_id} instance has no render mode; "
                                  f"supported: {catalogue.render_modes(self.env_id) or 'none'}")
        if self.env is None or self.needs_reset:
            raise ResetRequired("call reset before render: this instance has no episode in progress")
        try:
            frame = self.env.render()
        except Exception as exc:
            raise EnvFailed(f"{self.env_id} failed to render: {type(exc).__name__}: {exc}") from exc
        if isinstance(frame, np.ndarray):
            return RenderOut(mode=self.render_mode, type="image_base64", format="png",
                             render=base64.b64encode(png_bytes(frame)).decode("ascii"), shape=list(frame.shape))
        text = meanings.plain_text(frame.getvalue() if isinstance(frame, io.StringIO) else str(frame))
        return RenderOut(mode=self.render_mode, type="text", format=None, render=text, shape=None)

    def op_close(self) -> CloseOut:
        if self.env is not None:
            env, self.env = self.env, None
            env.close()
        self.needs_reset = True
        self.episode_over = False
        self.answers.forget()
        return CloseOut()

    def op_sample(self) -> SampleOut:
        space = self._env().action_space
        return SampleOut(action=spaces.encode(space, space.sample()))

    def op_dispose(self, reason: str) -> None:
        """Last call on the owner thread: end the run (the recorder releases what it holds), close the env."""
        try:
            if self.run is not None:
                self.run.close(reason)
        finally:
            self.op_close()

    def _format(self, requested: str | None) -> str:
        """The request's obs_format (checked before the env moves), else the instance's."""
        if requested is None:
            return self.obs_format
        assert self.observation_space is not None  # set by op_open
        return check_format(self.observation_space, requested)

    def _env(self) -> gym.Env:
        if self.env is None:
            raise ResetRequired("this instance's env is closed; call reset to re-create it")
        return self.env

    def _env_failed(self, exc: Exception) -> EnvFailed:
        message = f"{self.env_id} raised {type(exc).__name__}: {exc}"
        self.needs_reset = True
        self.answers.forget()
        if self.run is not None:
            self.run.on_error(message)
        return EnvFailed(message)

    # -- read-only views (safe from any thread: they read what the owner thread set) -----------

    def env_info(self) -> EnvInfo:
        assert self.described is not None  # set by op_open
        return EnvInfo(id=self.env_id, instance_id=self.instance_id, render_mode=self.render_mode, **self.described)

    def summary(self) -> InstanceSummary:
        return InstanceSummary(
            instance_id=self.instance_id, env_id=self.env_id, render_mode=self.render_mode,
            obs_format=self.obs_format, created_at=_iso(self.created_at), last_used_at=_iso(self.last_used_at),
            needs_reset=self.needs_reset, episode_over=self.episode_over,
            run_id=self.run.run_id if self.run is not None else None)


class CallDeadlines:
    """The bound on awaiting an instance's calls from one event loop, kept with at most one armed
    timer: an instance's calls finish in order, so the oldest pending one has the earliest deadline.
    (A timer per call cost about a third of the owner-thread round trip.)"""

    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float, error: Callable[[], Exception]):
        self.loop, self.timeout, self.error = loop, timeout, error
        self._pending: dict[asyncio.Future, float] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, future: asyncio.Future) -> None:
        deadline = self.loop.time() + self.timeout
        self._pending[future] = deadline
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._expire)

    def discard(self, future: asyncio.Future) -> None:
        self._pending.pop(future, None)

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time()
        for future, deadline in list(self._pending.items()):
            if deadline > now:
                self._timer = self.loop.call_at(deadline, self._expire)
                return
            del self._pending[future]
            if not future.done():
                future.set_exception(self.error())


def check_seed(seed: Any) -> None:
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < MAX_SEED:
        raise InvalidArgument(f"seed must be null or an integer from 0 to 2**128-1, got {str(seed)[:40]!r}")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()
