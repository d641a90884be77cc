"""The run manager: one per env instance, it turns resets and steps into the ledger's runs and episodes.

Threads: the instance's owner thread calls before_*/on_*/close; request threads call status,
statistics, reset, start, pause and resume. One lock orders them; it is held across the ledger
write of a transition (so memory and database never disagree about which run or episode a
write belongs to), never across anything else slow. statistics() reads the database outside it.

Memory is a few counters per run, whatever its length: the open episode's totals live here and
reach the database when it ends (per step: one INSERT, see services.step_record).
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.utils import timezone

from gymenv.engine import RecorderSpec
from gymenv.schemas import ResetProgress, StepProgress
from gymsite.errors import InstanceClosed, LedgerFailed, ResetRequired, RunCompleted, RunEnded, RunPaused
from runs import live, selectors, services
from runs.ledger import ledger_call
from runs.models import RunState
from runs.schemas import RunProgress, RunResetOut, RunStatisticsOut, RunStatusOut

ERROR_MESSAGE_CHARS = 2000


@dataclass
class _OpenEpisode:
    pk: int
    num: int
    started_at: datetime
    steps: int = 0
    reward: float = 0.0
    final_reward: float | None = None


@dataclass
class _Batch:
    """Writes held by a batched step until it commits them at once: its steps (services.step_rows'
    tuples, one multi-row INSERT) and the other writes, in order after them. Their memory updates are
    applied as they are made."""

    steps: list[tuple] = field(default_factory=list)
    writes: list[_Write] = field(default_factory=list)

    def take(self) -> list[_Write]:
        """The held writes, emptied; without their memory updates (applied when they were held). The
        rows are built here, on the owner thread: the writer's share is the INSERT alone."""
        rows = services.step_rows(steps=self.steps) if self.steps else []
        writes, self.steps, self.writes = self.writes, [], []
        inserts = [_Write(lambda: services.steps_record(rows=rows))] if rows else []
        return inserts + [_Write(w.write) for w in writes]


def episode_success(*, info: dict, total_reward: float, threshold: float | None,
                    terminated: bool, truncated: bool, final_reward: float | None) -> bool:
    """SPEC 7: the env's own verdict, else the reward threshold, else a positive terminal reward."""
    if info.get("is_success") is not None:
        return bool(info["is_success"])
    if threshold is not None:
        return total_reward >= threshold
    return terminated and not truncated and final_reward is not None and final_reward > 0


class RunManager:
    """The ledger's side of the engine's recorder port (gymenv.engine.EpisodeRecorder)."""

    def __init__(self, spec: RecorderSpec):
        self.instance_id = spec.instance_id
        self.env_id = spec.env_id
        self.env_kwargs = spec.env_kwargs
        self.env_spec = spec.env_spec
        self.config = spec.policy
        self.threshold = (spec.policy.success_threshold if spec.policy.success_threshold is not None
                          else spec.reward_threshold)
        self._lock = threading.Lock()
        self._run_uuid: uuid.UUID | None = None
        self._closed = False  # the instance went away: no run control may start another run
        self._batch: _Batch | None = None  # inside batch(): on_step's writes wait for its end
        # The current run's memory, set when its row is committed (_new_run_writes, below).
        self._state: RunState
        self._error: str
        self._episode: _OpenEpisode | None
        self._last_episode_num: int
        self._current_step: int
        self._completed: int
        self._successful: int
        self._total_steps: int
        self._total_reward: float
        with self._lock:
            self._write(self._new_run_writes())

    # -- the owner thread ---------------------------------------------------------------------

    def before_reset(self) -> None:
        """Refuse a reset the run cannot take, before the env is touched."""
        with self._lock:
            self._refuse_when_over()
            if self._state == RunState.PAUSED:
                raise RunPaused(self._paused_message())
            self._refuse_when_last_episode_abandoned()

    def on_reset(self, *, seed: int | None, observation: Any, info: dict) -> ResetProgress:
        now = timezone.now()
        with self._lock:
            # A pause that arrived while the env was resetting lets this reset finish; an end does not.
            self._refuse_when_over()
            self._refuse_when_last_episode_abandoned()
            writes = []
            if self._episode is not None:
                writes.append(self._episode_end_writes(abandoned=True, now=now))
            num, run_id = self._last_episode_num + 1, self._run_uuid

            def opened(pk: int) -> None:
                self._episode = _OpenEpisode(pk=pk, num=num, started_at=now)
                self._last_episode_num, self._current_step = num, 0

            writes.append(_Write(lambda: services.episode_open(
                run_id=run_id, episode_num=num, seed=seed, observation=observation, info=info,
                started_at=now, first=num == 1), opened))
            self._write(*writes)
            return ResetProgress(run_id=self.run_id, episode_num=num, total_episodes=self.config.num_episodes,
                                 max_steps=self.config.max_steps_per_episode)

    def before_step(self) -> None:
        with self._lock:
            self._refuse_when_over()
            if self._state == RunState.PAUSED:
                raise RunPaused(self._paused_message())
            if self._episode is None:
                raise ResetRequired(f"run {self.run_id} has no episode in progress (it was reset or restarted); "
                                    "call reset to start its next episode")

    def on_step(self, *, action: Any, observation: Any, reward: float | None, terminated: bool, truncated: bool,
                info: dict) -> tuple[bool, StepProgress]:
        """Record a step; returns (truncated, run_progress): the step limit truncates the episode."""
        now = timezone.now()
        with self._lock:
            ep = self._episode
            if ep is None:  # the run was reset by a request while the env stepped
                raise ResetRequired(f"run {self.run_id} was reset while this step ran; call reset "
                                    "to start the new run's first episode")
            step_num = ep.steps + 1
            reward = reward if reward is not None and math.isfinite(reward) else None
            total_reward = ep.reward + (reward or 0.0)
            terminated = bool(terminated)
            truncated = bool(truncated) or step_num >= self.config.max_steps_per_episode

            def recorded(_) -> None:
                ep.steps, ep.reward, ep.final_reward = step_num, total_reward, reward
                self._current_step = step_num

            ends = []
            if terminated or truncated:
                ends.append(self._episode_end_writes(
                    abandoned=False, now=now, info=info, terminated=terminated, truncated=truncated,
                    steps=step_num, reward=total_reward, final_reward=reward))
            if self._batch is not None:
                self._hold((ep.pk, step_num, action, observation, reward, terminated, truncated, info, now),
                           recorded, ends)
            else:
                # Built here, on the owner thread: the writer thread's share is the INSERT alone.
                row = services.step_build(episode_id=ep.pk, step_num=step_num, action=action,
                                           observation=observation, reward=reward, terminated=terminated,
                                           truncated=truncated, info=info, created_at=now)
                writes = [_Write(lambda: services.step_record(row=row), recorded), *ends]
                # A step alone is one INSERT (services.step_record); an episode's end adds more.
                self._write_step(step_num, writes, single_statement=len(writes) == 1)
            return truncated, StepProgress(
                run_id=self.run_id, episode_num=ep.num, step_num=step_num, completed_episodes=self._completed,
                total_episodes=self.config.num_episodes, run_state=self._state.value)

    def _write_step(self, step_num: int, writes: list[_Write], *, single_statement: bool) -> None:
        try:
            self._write(*writes, single_statement=single_statement)
        except LedgerFailed as exc:
            # The env has moved on without this step on record: the run's trajectory would
            # have a hole, so the run stops here (POST /run/reset starts a clean one).
            self._fail(f"step {step_num} could not be recorded: {exc.message}"[:ERROR_MESSAGE_CHARS])
            raise

    # -- batched steps (SPEC 11) ----------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The steps recorded inside it are committed together when it ends: one transaction, their
        rows in one multi-row INSERT. Memory moves with each step (the next one's number depends on it)."""
        with self._lock:
            self._batch = _Batch()
        try:
            yield
        finally:
            with self._lock:
                batch, self._batch = self._batch, None
                if batch is not None and (batch.steps or batch.writes):
                    # Rows alone go as one INSERT, which commits by itself.
                    single = not batch.writes and len(batch.steps) <= services.STEPS_PER_INSERT
                    self._write_step(self._current_step, batch.take(), single_statement=single)

    def _hold(self, step: tuple, recorded: Callable[[Any], None], writes: list[_Write]) -> None:
        """In a batch: keep the step and the writes that follow it for the batch's end; apply their
        memory updates now."""
        assert self._batch is not None
        self._batch.steps.append(step)
        self._batch.writes.extend(writes)
        recorded(None)
        for w in writes:
            if w.after is not None:
                w.after(None)

    def on_error(self, message: str) -> None:
        """The env raised: the run stops in `error` with the message, its open episode kept."""
        with self._lock:
            if self._state in (RunState.RUNNING, RunState.PAUSED, RunState.IDLE):
                self._fail(message[:ERROR_MESSAGE_CHARS])

    def close(self, reason: str) -> None:
        """The instance goes away: an unfinished run ends in `error` with `reason`; a completed one is
        untouched. Called last on the owner thread, which then gives back its database connection."""
        try:
            with self._lock:
                self._closed = True
                if self._state in (RunState.RUNNING, RunState.PAUSED, RunState.IDLE):
                    self._fail(reason)
                self._unregister()
        finally:
            connection.close()

    # -- request threads ------------------------------------------------------------------------

    def status(self) -> RunStatusOut:
        with self._lock:
            return self._status()

    def statistics(self) -> RunStatisticsOut:
        with self._lock:
            run_id, open_episode = self.run_id, self._live_episode()
        return selectors.run_statistics(run_id=run_id, live=open_episode)

    def live_episode(self, run_id: str) -> selectors.LiveEpisode | None:
        """The open episode's in-memory totals, if `run_id` is still this manager's current run."""
        with self._lock:
            return self._live_episode() if self.run_id == str(run_id) else None

    def reset(self) -> RunResetOut:
        """Start a new run; an unfinished one ends in `error` ("reset by client"), a finished one is kept as is."""
        with self._lock:
            self._refuse_when_closed()
            self._write(self._end_writes_for_replacement(), self._new_run_writes())
            return RunResetOut(run_id=self.run_id)

    def start(self) -> RunStatusOut:
        """running: nothing to do; paused: resume; completed or error: a new run."""
        with self._lock:
            self._refuse_when_closed()
            if self._state in (RunState.COMPLETED, RunState.ERROR):
                self._write(self._new_run_writes())
            elif self._state in (RunState.PAUSED, RunState.IDLE):
                self._set_state(RunState.RUNNING)
            return self._status()

    def pause(self) -> RunStatusOut:
        with self._lock:
            self._refuse_when_closed()
            self._refuse_when_over()
            if self._state == RunState.RUNNING:
                self._set_state(RunState.PAUSED)
            return self._status()

    def resume(self) -> RunStatusOut:
        with self._lock:
            self._refuse_when_closed()
            self._refuse_when_over()
            if self._state in (RunState.PAUSED, RunState.IDLE):
                self._set_state(RunState.RUNNING)
            return self._status()

    @property
    def run_id(self) -> str:
        return str(self._run_uuid)

    @property
    def state(self) -> str:
        return self._state.value

    # -- internals (called with the lock held) ----------------------------------------------------

    def _write(self, *writes: _Write, single_statement: bool = False) -> Any:
        """Commit `writes` in one transaction, then apply their memory updates; the last one's result.
        Inside a batch, the writes it holds go first (an env error or a run control mid-batch)."""
        if self._batch is not None and (self._batch.steps or self._batch.writes):
            writes = (*self._batch.take(), *writes)
            single_statement = False

        def write_all() -> list:
            return [w.write() for w in writes]

        try:
            results = ledger_call(write_all, single_statement=single_statement)
        except LedgerFailed:
            raise
        except Exception as exc:
            raise LedgerFailed(f"the ledger could not record this: {type(exc).__name__}: {exc}") from exc
        for w, result in zip(writes, results, strict=True):
            if w.after is not None:
                w.after(result)
        return results[-1]

    def _new_run_writes(self) -> _Write:
        """Open a new run; memory follows once it is committed."""
        def write():
            return services.run_create(
                instance_id=self.instance_id, env_id=self.env_id, env_kwargs=self.env_kwargs,
                env_spec=self.env_spec, num_episodes=self.config.num_episodes,
                max_steps_per_episode=self.config.max_steps_per_episode, success_threshold=self.threshold)

        def after(run) -> None:
            self._unregister()
            self._run_uuid = run.pk
            self._state = RunState.RUNNING
            self._error = ""
            self._episode = None
            self._last_episode_num = self._current_step = 0
            self._completed = self._successful = self._total_steps = 0
            self._total_reward = 0.0
            live.register(self.run_id, self)

        return _Write(write, after)

    def _episode_end_writes(self, *, abandoned: bool, now: datetime, info: dict | None = None,
                            terminated: bool = False, truncated: bool = False,
                            steps: int | None = None, reward: float | None = None, final_reward: float | None = None,
                            end_run: tuple[RunState, str] | None = None) -> _Write:
        """End the open episode (done, or abandoned); the run completes when it was its last.

        steps/reward/final_reward: the episode's totals after a step still being written (default: as recorded).
        """
        ep = self._episode
        assert ep is not None, "called with an episode open"
        if steps is None or reward is None:  # the caller passes both or neither
            steps, reward, final_reward = ep.steps, ep.reward, ep.final_reward
        success = not abandoned and episode_success(
            info=info or {}, total_reward=reward, threshold=self.threshold,
            terminated=terminated, truncated=truncated, final_reward=final_reward)
        completed, successful = self._completed + 1, self._successful + int(success)
        total_steps, total_reward = self._total_steps + steps, self._total_reward + reward
        state: dict[str, Any] = {}
        if end_run is not None:
            state = {"state": end_run[0], "error": end_run[1], "ended_at": now}
        elif completed >= self.config.num_episodes:
            state = {"state": RunState.COMPLETED, "error": "", "ended_at": now}
        run_id, pk = self._run_uuid, ep.pk

        def write():
            services.episode_close(
                episode_id=pk, ended_at=now, total_steps=steps, total_reward=reward, final_reward=final_reward,
                terminated=terminated, truncated=truncated, done=not abandoned, success=success,
                abandoned=abandoned)
            services.run_set_totals(run_id=run_id, completed_episodes=completed, successful_episodes=successful,
                                    total_steps=total_steps, total_reward=total_reward, **state)

        def after(_) -> None:
            self._episode = None
            self._current_step = steps
            self._completed, self._successful = completed, successful
            self._total_steps, self._total_reward = total_steps, total_reward
            if state:
                self._state, self._error = RunState(state["state"]), state["error"]

        return _Write(write, after)

    def _end_writes_for_replacement(self) -> _Write:
        if self._state in (RunState.COMPLETED, RunState.ERROR):
            return _Write(lambda: None, lambda _: None)
        return self._end_run_writes(RunState.ERROR, "reset by client before it completed")

    def _end_run_writes(self, state: RunState, message: str) -> _Write:
        now = timezone.now()
        if self._episode is not None:
            return self._episode_end_writes(abandoned=True, now=now, end_run=(state, message))
        run_id = self._run_uuid

        def after(_) -> None:
            self._state, self._error = state, message

        return _Write(lambda: services.run_set_state(run_id=run_id, state=state, error=message, ended_at=now),
                      after)

    def _fail(self, message: str) -> None:
        try:
            self._write(self._end_run_writes(RunState.ERROR, message))
        except LedgerFailed:
            # The database is gone too: stop the run in memory; the next start marks it interrupted.
            self._state, self._error = RunState.ERROR, message

    def _set_state(self, state: RunState) -> None:
        run_id = self._run_uuid

        def after(_) -> None:
            self._state = state

        self._write(_Write(lambda: services.run_set_state(run_id=run_id, state=state), after))

    def _unregister(self) -> None:
        if self._run_uuid is not None:
            live.unregister(self.run_id, self)

    def _refuse_when_closed(self) -> None:
        if self._closed:
            raise InstanceClosed(f"instance {self.instance_id} was closed; its run {self.run_id} is over")

    def _refuse_when_over(self) -> None:
        if self._state == RunState.COMPLETED:
            raise RunCompleted(self._completed_message())
        if self._state == RunState.ERROR:
            raise RunEnded(f"run {self.run_id} stopped with an error ({self._error})")

    def _refuse_when_last_episode_abandoned(self) -> None:
        if self._episode is not None and self._completed + 1 >= self.config.num_episodes:
            # A reset abandons the open episode; when it is the run's last, that completes the run
            # and there is no episode left to start (SPEC 7). The env is left as it is.
            self._write(self._episode_end_writes(abandoned=True, now=timezone.now()))
            raise RunCompleted(self._completed_message())

    def _completed_message(self) -> str:
        n = self.config.num_episodes
        return f"run {self.run_id} is completed ({n}/{n} episodes)"

    def _paused_message(self) -> str:
        return f"run {self.run_id} is paused"

    def _status(self) -> RunStatusOut:
        total = self.config.num_episodes
        return RunStatusOut(
            run_id=self.run_id, state=self._state.value, current_episode=self._last_episode_num,
            current_step=self._episode.steps if self._episode is not None else self._current_step,
            completed_episodes=self._completed, total_episodes=total,
            progress=RunProgress(episodes=f"{self._completed}/{total}",
                                 percentage=round(100.0 * self._completed / total, 2) if total else 0.0))

    def _live_episode(self) -> selectors.LiveEpisode | None:
        ep = self._episode
        if ep is None:
            return None
        return selectors.LiveEpisode(episode_num=ep.num, total_steps=ep.steps, total_reward=ep.reward,
                                     final_reward=ep.final_reward)


class _Write:
    """A ledger write (run on the writer thread) and the memory update that follows its commit."""

    __slots__ = ("after", "write")

    def __init__(self, write: Callable[[], Any], after: Callable[[Any], None] | None = None):
        self.write, self.after = write, after
