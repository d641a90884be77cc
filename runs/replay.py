"""Replaying recorded episodes (SPEC 14): one replay of seed, options and actions in an env, used by
verify (a fresh env, the report), resume and fork (the instance's own env, brought to a recorded step).

A replay compares every step with the record as it goes: the observation (as the ledger's JSON), the
reward and the flags. Truncation is the env's, or the run's step limit where the record says so.
"""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
from django.db import close_old_connections, connection

from gymenv import spaces
from gymenv.engine import RecorderSpec, RunPolicy
from gymenv.engine.recorder import ReplayedStep, ReplayPoint
from gymenv.observations import Observation
from gymsite.errors import InvalidArgument, ReplayDiverged, RunNotResumable, UnknownRun
from runs import live, selectors
from runs.manager import OpenEpisode, RunManager
from runs.models import Episode, Run, RunState, Step
from runs.schemas import Divergence, VerifyOut
from runs.services import finite_json, resumable_q

CHUNK = 500


@dataclass
class Replayed:
    """How far a replay got: the steps replayed, their recorded return, the first divergence, and the
    last step's record."""

    steps: int = 0
    reward: float = 0.0
    divergence: Divergence | None = None
    last: Step | None = None
    replayed: ReplayedStep | None = None  # the last step as the env made it again


def replay_episode(env: gym.Env, episode: Episode, *, max_steps: int, upto: int | None = None,
                   progress: Callable[[], None] | None = None) -> Replayed:
    """Reset `env` with the episode's seed and options and take its recorded actions (up to step `upto`),
    stopping at the first step that differs from the record."""
    result = Replayed()
    obs, _ = env.reset(seed=episode.seed, options=episode.options)
    result.divergence = _differs(0, "observation", episode.observation, _json(env, obs))
    if result.divergence is not None:
        return result
    for row in _steps(episode, upto):
        try:
            action = spaces.decode(env.action_space, row.action)
        except spaces.ActionError as exc:
            raise InvalidArgument(f"step {row.step_num} of episode {episode.episode_num} holds an action this "
                                  f"env does not take: {exc}") from None
        obs, reward, terminated, truncated, _ = env.step(action)
        result.steps, result.last, result.reward = row.step_num, row, result.reward + (row.reward or 0.0)
        result.replayed = ReplayedStep(action=row.action, observation=obs, reward=row.reward,
                                       terminated=row.terminated, truncated=row.truncated, info=row.info)
        reward = float(reward)
        at_limit = row.step_num >= max_steps
        for field, recorded, replayed in (
                ("reward", row.reward, reward if math.isfinite(reward) else None),
                ("terminated", row.terminated, bool(terminated)),
                ("truncated", row.truncated, bool(truncated) or (at_limit and row.truncated)),
                ("observation", row.observation, None)):
            if field == "observation":
                replayed = _json(env, obs)
            result.divergence = _differs(row.step_num, field, recorded, replayed)
            if result.divergence is not None:
                return result
        if progress is not None:
            progress()
    return result


def _steps(episode: Episode, upto: int | None) -> Iterator[Step]:
    steps = episode.steps.order_by("step_num")
    if upto is not None:
        steps = steps.filter(step_num__lte=upto)
    return steps.iterator(chunk_size=CHUNK)


def _json(env: gym.Env, obs: Any) -> Any:
    return finite_json(Observation(env.observation_space, obs).json())


def _differs(step_num: int, field: str, recorded: Any, replayed: Any) -> Divergence | None:
    if recorded == replayed:
        return None
    return Divergence(step_num=step_num, field=field, recorded=recorded, replayed=replayed)


def make_env(run: Run) -> gym.Env:
    """A fresh env as the run's was made (no render mode: what a replay compares does not depend on it)."""
    return gym.make(run.env_id, **run.env_kwargs)


# -- verify ---------------------------------------------------------------------------------------------


def episodes_of(run: Run, episode_num: int | None = None) -> list[Episode]:
    episodes = run.episodes.order_by("episode_num").defer("reset_info")
    if episode_num is None:
        return list(episodes)
    try:
        return [episodes.get(episode_num=episode_num)]
    except Episode.DoesNotExist:
        raise UnknownRun(f"run {run.pk} has no episode {episode_num}", remedy=None) from None


def verify_episode(run: Run, episode: Episode, *, env: gym.Env | None = None,
                   progress: Callable[[], None] | None = None) -> VerifyOut:
    """Replay one recorded episode in a fresh env (or `env`, reset by the replay) and report."""
    env = env or make_env(run)
    try:
        replayed = replay_episode(env, episode, max_steps=run.max_steps_per_episode, progress=progress)
    finally:
        env.close()
    return VerifyOut(run_id=str(run.pk), episode_num=episode.episode_num, matched=replayed.divergence is None,
                     steps_checked=replayed.steps, divergence=replayed.divergence)


def run_verify(*, run_id: str, episode_num: int) -> VerifyOut:
    """POST /runs/{id}/verify: one episode."""
    run = selectors.run_get(run_id=run_id)
    return verify_episode(run, episodes_of(run, episode_num)[0])


# -- resume and fork: the engine's RunOrigin --------------------------------------------------------------


def _policy(run: Run) -> RunPolicy:
    return RunPolicy(num_episodes=run.num_episodes, max_steps_per_episode=run.max_steps_per_episode,
                     success_threshold=run.success_threshold)


def _diverged(what: str, run: Run, episode: Episode, divergence: Divergence) -> ReplayDiverged:
    where = "its reset" if divergence.step_num == 0 else f"step {divergence.step_num}"
    return ReplayDiverged(
        f"cannot {what} run {run.pk}: replaying episode {episode.episode_num} in a fresh {run.env_id} does not "
        f"reproduce the record at {where} ({divergence.field}: recorded {str(divergence.recorded)[:80]}, "
        f"replayed {str(divergence.replayed)[:80]}); the env is not deterministic for its seed and actions, "
        "or it changed since")


class Resume:
    """A stopped or interrupted run, taken up again by a new instance (its open episode replayed)."""

    def __init__(self, run: Run):
        if run.state in (RunState.RUNNING, RunState.PAUSED):
            raise RunNotResumable(f"run {run.pk} is {run.state} on a live instance ({run.instance_id}): it needs "
                                  "no resume")
        if not Run.objects.filter(resumable_q(), pk=run.pk).exists():
            said = f"{run.state} ({run.error})" if run.error else str(run.state)
            raise RunNotResumable(f"run {run.pk} is {said}: only a stopped or interrupted run can be resumed")
        if live.live_manager(str(run.pk)) is not None:
            raise RunNotResumable(f"run {run.pk} is still held by live instance {run.instance_id}")
        self.run = run
        self.env_id, self.env_kwargs, self.policy = run.env_id, dict(run.env_kwargs), _policy(run)
        last = run.episodes.order_by("-episode_num").defer("reset_info").first()
        self.last_num = last.episode_num if last is not None else 0
        self.episode = last if last is not None and not last.done else None  # the one its end left open
        self._open: OpenEpisode | None = None

    def replay(self, env: gym.Env) -> ReplayPoint:
        with _owner_thread_connection():
            return self._replay(env)

    def _replay(self, env: gym.Env) -> ReplayPoint:
        if self.episode is None:
            return ReplayPoint(episode_num=self.last_num, step_num=0, episode_open=False)
        replayed = replay_episode(env, self.episode, max_steps=self.run.max_steps_per_episode)
        if replayed.divergence is not None:
            raise _diverged("resume", self.run, self.episode, replayed.divergence)
        last = replayed.last
        self._open = OpenEpisode(pk=self.episode.pk, num=self.episode.episode_num, started_at=self.episode.started_at,
                                 steps=replayed.steps, reward=replayed.reward,
                                 final_reward=last.reward if last is not None else None)
        return ReplayPoint(episode_num=self.episode.episode_num, step_num=replayed.steps, episode_open=True,
                           last_step=replayed.replayed)

    def recorder(self, spec: RecorderSpec) -> RunManager:
        return RunManager.resuming(spec, run_id=self.run.pk, open_episode=self._open, last_episode_num=self.last_num)


class Fork:
    """A new run that starts in the state after a recorded step."""

    def __init__(self, run: Run, episode: Episode, step_num: int):
        recorded = episode.steps.count()
        if step_num > recorded:
            raise InvalidArgument(f"episode {episode.episode_num} of run {run.pk} has {recorded} steps: "
                                  f"step_num must be 0..{recorded}")
        self.run, self.episode, self.step_num = run, episode, step_num
        self.env_id, self.env_kwargs, self.policy = run.env_id, dict(run.env_kwargs), _policy(run)
        self._ended: dict | None = None

    def replay(self, env: gym.Env) -> ReplayPoint:
        with _owner_thread_connection():
            return self._replay(env)

    def _replay(self, env: gym.Env) -> ReplayPoint:
        replayed = replay_episode(env, self.episode, max_steps=self.run.max_steps_per_episode, upto=self.step_num)
        if replayed.divergence is not None:
            raise _diverged("fork", self.run, self.episode, replayed.divergence)
        last = replayed.last
        if last is not None and (last.terminated or last.truncated):
            self._ended = {"info": last.info, "terminated": last.terminated, "truncated": last.truncated}
        return ReplayPoint(episode_num=1, step_num=self.step_num, episode_open=self._ended is None)

    def recorder(self, spec: RecorderSpec) -> RunManager:
        return RunManager.forking(spec, parent_run=self.run.pk, episode_id=self.episode.pk,
                                  episode_num=self.episode.episode_num, step_num=self.step_num, ended=self._ended)


@contextlib.contextmanager
def _owner_thread_connection() -> Iterator[None]:
    """A replay reads the ledger on the instance's owner thread. When it succeeds, the run manager made next
    owns that thread's connection (and closes it with the instance); when it fails there is no manager, so
    the connection is closed here, or it would outlive the thread."""
    try:
        yield
    except BaseException:
        connection.close()
        raise


def run_origin(*, resume_run: str | None = None, fork_from: dict | None = None) -> Resume | Fork:
    """The engine's RunOrigins (gymenv.engine.recorder): what POST /envs resume_run / fork_from start from.
    Called on a worker thread, which it leaves with no expired database connection (as a request would)."""
    try:
        if resume_run is not None:
            return Resume(_run(resume_run))
        assert fork_from is not None
        run = _run(fork_from["run_id"])
        return Fork(run, episodes_of(run, fork_from["episode_num"])[0], fork_from["step_num"])
    finally:
        close_old_connections()


def _run(run_id: str) -> Run:
    try:
        uuid.UUID(str(run_id))
    except ValueError:
        raise UnknownRun(f"no run {str(run_id)[:80]!r}") from None
    run = selectors.run_get(run_id=run_id)
    if run.episodes.filter(env_index__isnull=False).exists():
        # Its sub-envs' episodes interleave in one make_vec: replaying one alone would not rebuild the vector.
        raise InvalidArgument(f"run {run_id} was played by a vector instance: resume_run and fork_from take "
                              "single-env runs only")
    return run
