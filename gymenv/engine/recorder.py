"""The port between the engine and the ledger: what an instance tells its recorder, and asks of it.

The engine knows only this protocol. `runs` implements it (its run manager keeps the ledger); the
composition root (gymsite/serving.py) plugs the implementation in. With no recorder factory the
run manager is off and nothing is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from gymenv.schemas import ResetProgress, StepProgress, VectorResetProgress, VectorStepProgress


@dataclass(frozen=True)
class RunPolicy:
    """What a run is: its length, its step limit, and what counts as a success."""

    num_episodes: int
    max_steps_per_episode: int
    success_threshold: float | None = None  # overrides the env spec's reward_threshold


@dataclass(frozen=True)
class RecorderSpec:
    """Everything a recorder needs to know about the instance it records."""

    instance_id: str
    env_id: str
    env_kwargs: dict
    env_spec: dict | None
    reward_threshold: float | None
    policy: RunPolicy
    num_envs: int | None = None  # a vector instance's sub-envs: its recorder is a VectorRecorder


class VectorRecorder(Protocol):
    """A vector instance's recorder (SPEC 12): each sub-env plays its own episodes, recorded with its
    env_index; every call records one request's N steps (or resets) in one transaction."""

    @property
    def run_id(self) -> str: ...

    def before_reset(self) -> None: ...

    def on_reset(self, *, seeds: list[int | None], observations: list, infos: list[dict],
                 mask: list[bool] | None) -> VectorResetProgress:
        """Sub-env i (all of them, or those `mask` names) starts an episode with seeds[i]."""
        ...

    def before_step(self) -> None: ...

    def on_step(self, *, actions: list, observations: list, rewards: list[float | None], terminated: list[bool],
                truncated: list[bool], infos: list[dict], resets: list[tuple[int, Any, dict]]) -> VectorStepProgress:
        """Record sub-env i's step where it has an episode open (the others' entries are autoreset steps
        and are skipped), then open an episode for each (env_index, observation, info) in `resets`."""
        ...

    def on_error(self, message: str) -> None: ...

    def close(self, reason: str) -> None: ...


class EpisodeRecorder(Protocol):
    """One per instance. The owner thread calls before_*/on_*/close, in order; request threads call
    the run controls. Any method may raise a `gymsite.errors.GymsiteError` to refuse."""

    @property
    def run_id(self) -> str: ...

    def before_reset(self) -> None: ...

    def on_reset(self, *, seed: int | None, observation: Any, info: dict,
                 options: dict | None = None) -> ResetProgress: ...

    def before_step(self) -> None: ...

    def on_step(self, *, action: Any, observation: Any, reward: float | None, terminated: bool, truncated: bool,
                info: dict) -> tuple[bool, StepProgress]:
        """Record a step; returns (truncated, progress): the run's step limit truncates the episode."""
        ...

    def batch(self) -> AbstractContextManager[None]:
        """A batched step (SPEC 11): the on_step calls made inside it are committed together, in one
        transaction, when it exits without an exception (raising LedgerFailed if they cannot be)."""
        ...

    def on_error(self, message: str) -> None: ...

    def progress(self) -> StepProgress:
        """The run_progress a step answer would carry now (for answering a retry of a resumed step)."""
        ...

    def close(self, reason: str) -> None:
        """The instance goes away (on its owner thread): end the run, release what this thread holds."""
        ...

    def status(self) -> BaseModel: ...

    def statistics(self) -> BaseModel: ...

    def reset(self) -> BaseModel: ...

    def start(self) -> BaseModel: ...

    def pause(self) -> BaseModel: ...

    def resume(self) -> BaseModel: ...


# Returns a VectorRecorder when the spec has num_envs (the run controls are the same on both).
RecorderFactory = Callable[[RecorderSpec], Any]


@dataclass(frozen=True)
class ReplayedStep:
    """The last recorded step as the replay made it again: what its answer said, and the action sent."""

    action: Any
    observation: Any  # the env's own value
    reward: float | None
    terminated: bool
    truncated: bool
    info: dict


@dataclass(frozen=True)
class ReplayPoint:
    """Where a replayed env stands: the run's episode and step numbers, and whether that episode goes on.
    `last_step`: a resumed episode's last step, so that a client retrying it (its answer lost with the
    process that died) is answered again instead of refused."""

    episode_num: int  # 0: the run has no episode yet
    step_num: int
    episode_open: bool
    last_step: ReplayedStep | None = None


class RunOrigin(Protocol):
    """A recorded run an instance starts from (SPEC 14 resume and fork), as the ledger gives it."""

    env_id: str
    env_kwargs: dict
    policy: RunPolicy

    def replay(self, env: Any) -> ReplayPoint:
        """On the owner thread: bring the freshly made `env` to the recorded state; raise
        gymsite.errors.ReplayDiverged when it does not reproduce the record."""
        ...

    def recorder(self, spec: RecorderSpec) -> EpisodeRecorder:
        """The recorder that carries the run on (resume: the same run; fork: a new one with its parent)."""
        ...


# resume_run=RUN_ID or fork_from={"run_id", "episode_num", "step_num"}; raises the domain's refusals.
RunOrigins = Callable[..., RunOrigin]
