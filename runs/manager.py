"""The run manager: one per env instance, it turns resets and steps into the ledger's runs and episodes.

Threads: the instance's owner thread calls before_*/on_*/close; request threads call status,
statistics, reset, start, pause and resume. One lock orders them; it is held across the ledger
write of a transition (so memory and database never disagree about which run or episode a
write belongs to), never across anything else slow. statistics() reads the database outside it.

Memory is a few counters per run, whatever its length: the open episode's totals live here and
reach the database when it ends (per step: one INSERT, see services.step_record).

A run reaches the database with its first episode (SPEC 7: history keeps no run without one): until
then it lives here only, with its id, state and no episodes. A resumed run (runs/replay.py) is a
recorded one taken up again; a fork's run is written with its copied episode at once.
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
from gymsite.errors import (
    InstanceClosed,
    LedgerFailed,
    ResetRequired,
    RunCompleted,
    RunEnded,
    RunNotResumable,
    RunPaused,
    RunStopped,
)
from runs import live, selectors, services
from runs.ledger import ledger_call
from runs.models import Run, RunState
from runs.schemas import RunProgress, RunResetOut, RunStatisticsOut, RunStatusOut

ERROR_MESSAGE_CHARS = 2000
# The states a run ends in before its episodes are done; a resume takes up a stopped or interrupted one.
UNFINISHED = (RunState.RUNNING, RunState.PAUSED, RunState.IDLE)
RESET_REASON = "reset by client before it completed"


@dataclass
class OpenEpisode:
    """The episode in progress, its totals so far (they reach its row when it ends)."""

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

    def __init__(self, spec: RecorderSpec, *, carry_on: Callable[[RunManager], None] | None = None):
        """A new run, recorded from its first reset on; or with `carry_on` (called with the lock held), the
        recorded run it takes up (resume) or makes (fork), committed before the manager is used."""
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
        # The current run's memory (_new_run, below); its row exists once it has an episode.
        self._recorded = False
        self._created_at: datetime
        self._state: RunState
        self._error: str
        self._reason: str
        self._episode: OpenEpisode | None
        self._last_episode_num: int
        self._current_step: int
        self._completed: int
        self._successful: int
        self._total_steps: int
        self._total_reward: float
        with self._lock:
            if carry_on is None:
                self._new_run()
            else:
                try:
                    carry_on(self)
                except BaseException:
                    # No manager, so no close() will give this (owner) thread's connection back: do it now.
                    connection.close()
                    raise

    @classmethod
    def resuming(cls, spec: RecorderSpec, *, run_id: uuid.UUID, open_episode: OpenEpisode | None,
                 last_episode_num: int) -> RunManager:
        """The manager of a recorded run taken up again (its env replayed to `open_episode`'s last step)."""
        return cls(spec, carry_on=lambda m: m._write(m._resume_writes(run_id, open_episode, last_episode_num)))

    @classmethod
    def forking(cls, spec: RecorderSpec, *, parent_run: uuid.UUID, episode_id: int, episode_num: int,
                step_num: int, ended: dict | None) -> RunManager:
        """The manager of a new run forked after a recorded step; `ended`: that step ended its episode
        (info, terminated, truncated), so the fork's copy of the episode is closed as done."""
        def carry_on(m: RunManager) -> None:
            m._write(m._fork_writes(parent_run=parent_run, episode_id=episode_id, episode_num=episode_num,
                                    step_num=step_num))
            if ended is not None:
                m._write(m._episode_end_writes(abandoned=False, now=timezone.now(), **ended))

        return cls(spec, carry_on=carry_on)

    # -- the owner thread ---------------------------------------------------------------------

    def before_reset(self) -> None:
        """Refuse a reset the run cannot take, before the env is touched."""
        with self._lock:
            self._refuse_when_over()
            if self._state == RunState.PAUSED:
                raise RunPaused(self._paused_message())
            self._refuse_when_last_episode_abandoned()

    def on_reset(self, *, seed: int | None, observation: Any, info: dict, options: dict | None = None) -> ResetProgress:
        now = timezone.now()
        with self._lock:
            # A pause that arrived while the env was resetting lets this reset finish; an end does not.
            self._refuse_when_over()
            self._refuse_when_last_episode_abandoned()
            writes = []
            if not self._recorded:
                writes.append(self._run_create_writes())
            if self._episode is not None:
                writes.append(self._episode_end_writes(abandoned=True, now=now))
            num, run_id = self._last_episode_num + 1, self._run_uuid

            def opened(pk: int) -> None:
                self._episode = OpenEpisode(pk=pk, num=num, started_at=now)
                self._last_episode_num, self._current_step = num, 0

            writes.append(_Write(lambda: services.episode_open(
                run_id=run_id, episode_num=num, seed=seed, options=options, observation=observation, info=info,
                started_at=now, first=num == 1), opened))
            self._write(*writes)
            return ResetProgress(run_id=self.run_id, episode_num=num, total_episodes=self.config.num_episodes,
                                 max_steps=self.config.max_steps_per_episode, seed=seed)

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
    def progress(self) -> StepProgress:
        with self._lock:
            return StepProgress(
                run_id=self.run_id, episode_num=self._last_episode_num,
                step_num=self._episode.steps if self._episode is not None else self._current_step,
                completed_episodes=self._completed, total_episodes=self.config.num_episodes,
                run_state=self._state.value)

    def on_error(self, message: str) -> None:
        """The env raised: the run stops in `error` with the message, its open episode kept."""
        with self._lock:
            if self._state in (RunState.RUNNING, RunState.PAUSED, RunState.IDLE):
                self._fail(message[:ERROR_MESSAGE_CHARS])

    def close(self, reason: str) -> None:
        """The instance goes away on purpose: an unfinished run is `stopped` with `reason`; a finished one
        is untouched. Called last on the owner thread, which then gives back its database connection."""
        try:
            with self._lock:
                self._closed = True
                if self._state in UNFINISHED:
                    try:
                        self._write(self._end_run_writes(RunState.STOPPED, reason))
                    except LedgerFailed:
                        # The database is gone: the next start finds the run open and closes it as interrupted.
                        self._state, self._reason = RunState.STOPPED, reason
                self._unregister()
        finally:
            connection.close()

    # -- request threads ------------------------------------------------------------------------

    def status(self) -> RunStatusOut:
        with self._lock:
            return self._status()

    def statistics(self) -> RunStatisticsOut:
        with self._lock:
            if not self._recorded:
                return selectors.run_statistics_unrecorded(run=self._unrecorded_row())
            run_id, open_episode = self.run_id, self._live_episode()
        return selectors.run_statistics(run_id=run_id, live=open_episode)

    def live_episode(self, run_id: str) -> selectors.LiveEpisode | None:
        """The open episode's in-memory totals, if `run_id` is still this manager's current run."""
        with self._lock:
            return self._live_episode() if self.run_id == str(run_id) else None

    def reset(self) -> RunResetOut:
        """Start a new run; an unfinished one is `stopped` ("reset by client"), a finished one is kept as is."""
        with self._lock:
            self._refuse_when_closed()
            if self._state in UNFINISHED:
                self._write(self._end_run_writes(RunState.STOPPED, RESET_REASON))
            self._new_run()
            return RunResetOut(run_id=self.run_id)

    def start(self) -> RunStatusOut:
        """running: nothing to do; paused: resume; completed, stopped or error: a new run."""
        with self._lock:
            self._refuse_when_closed()
            if self._state not in UNFINISHED:
                self._new_run()
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

    def _write(self, *writes: _Write, single_statement: bool = False) -> None:
        """Commit `writes` in one transaction, then apply their memory updates. Writes of a run not yet
        recorded have nothing to commit (write=None): their memory updates apply at once. Inside a batch,
        the writes it holds go first (an env error or a run control mid-batch)."""
        if self._batch is not None and (self._batch.steps or self._batch.writes):
            writes = (*self._batch.take(), *writes)
            single_statement = False

        def write_all() -> list:
            return [w.write() if w.write is not None else None for w in writes]

        results: list = [None] * len(writes)
        if any(w.write is not None for w in writes):
            try:
                results = ledger_call(write_all, single_statement=single_statement)
            except LedgerFailed:
                raise
            except Exception as exc:
                raise LedgerFailed(f"the ledger could not record this: {type(exc).__name__}: {exc}") from exc
        for w, result in zip(writes, results, strict=True):
            if w.after is not None:
                w.after(result)

    def _new_run(self, run_id: uuid.UUID | None = None, *, recorded: bool = False) -> None:
        """A new run, in memory only: its row is written with its first episode (_run_create_writes);
        `recorded`: a fork's, whose row `run_id` is written already."""
        self._unregister()
        self._run_uuid = run_id or uuid.uuid4()
        self._recorded = recorded
        self._created_at = timezone.now()
        self._state = RunState.RUNNING
        self._error = self._reason = ""
        self._episode = None
        self._last_episode_num = self._current_step = 0
        self._completed = self._successful = self._total_steps = 0
        self._total_reward = 0.0
        live.register(self.run_id, self)

    def _run_create_writes(self) -> _Write:
        run_id, state = self._run_uuid, self._state

        def write():
            return services.run_create(
                run_id=run_id, instance_id=self.instance_id, env_id=self.env_id, env_kwargs=self.env_kwargs,
                env_spec=self.env_spec, num_episodes=self.config.num_episodes,
                max_steps_per_episode=self.config.max_steps_per_episode, success_threshold=self.threshold,
                state=state)

        def after(_) -> None:
            self._recorded = True

        return _Write(write, after)

    def _unrecorded_row(self):
        """The current run as the row it will be, for statistics before its first episode."""
        return Run(run_id=self._run_uuid, instance_id=self.instance_id, env_id=self.env_id,
                   env_kwargs=self.env_kwargs, env_spec=self.env_spec, num_episodes=self.config.num_episodes,
                   max_steps_per_episode=self.config.max_steps_per_episode, success_threshold=self.threshold,
                   state=self._state, error=self._error, reason=self._reason, created_at=self._created_at)

    # -- resume and fork (runs/replay.py replays the env; these take up the ledger's side) ------------

    def _resume_writes(self, run_id: uuid.UUID, open_episode: OpenEpisode | None, last_episode_num: int) -> _Write:
        """Take up a stopped or interrupted run: running again, owned by this process and instance, its
        open episode open again (with the run's end it had been closed as abandoned)."""
        def write():
            return services.run_resume(run_id=run_id, instance_id=self.instance_id,
                                       open_episode_id=open_episode.pk if open_episode is not None else None)

        def after(totals: services.RunTotals | None) -> None:
            if totals is None:
                raise RunNotResumable(f"run {run_id} was taken up by another instance or process meanwhile")
            self._run_uuid, self._recorded, self._created_at = run_id, True, totals.created_at
            self._state, self._error, self._reason = RunState.RUNNING, "", ""
            self._episode = open_episode
            self._last_episode_num = last_episode_num
            self._current_step = open_episode.steps if open_episode is not None else 0
            self._completed, self._successful = totals.completed, totals.successful
            self._total_steps, self._total_reward = totals.steps, totals.reward
            live.register(self.run_id, self)

        return _Write(write, after)

    def _fork_writes(self, *, parent_run: uuid.UUID, episode_id: int, episode_num: int, step_num: int) -> _Write:
        """A new run whose episode 1 is a copy of the parent's episode up to `step_num`: the fork is a
        whole, replayable trajectory of its own."""
        run_id, now = uuid.uuid4(), timezone.now()

        def write():
            services.run_create(
                run_id=run_id, instance_id=self.instance_id, env_id=self.env_id, env_kwargs=self.env_kwargs,
                env_spec=self.env_spec, num_episodes=self.config.num_episodes,
                max_steps_per_episode=self.config.max_steps_per_episode, success_threshold=self.threshold,
                state=RunState.RUNNING, parent=(parent_run, episode_num, step_num))
            return services.episode_copy(episode_id=episode_id, run_id=run_id, upto_step=step_num, started_at=now)

        def after(copied: services.CopiedEpisode) -> None:
            self._new_run(run_id, recorded=True)
            self._episode = OpenEpisode(pk=copied.pk, num=1, started_at=now, steps=copied.steps,
                                         reward=copied.reward, final_reward=copied.final_reward)
            self._last_episode_num, self._current_step = 1, copied.steps

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
            state = _ending(*end_run, now)
        elif self.config.num_episodes and completed >= self.config.num_episodes:
            state = _ending(RunState.COMPLETED, "", now)
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
                self._state, self._error, self._reason = RunState(state["state"]), state["error"], state["reason"]

        return _Write(write, after)

    def _end_run_writes(self, state: RunState, message: str) -> _Write:
        """End the run in `state` (stopped: `message` is its reason; error: its error), its open episode abandoned."""
        now = timezone.now()
        if self._episode is not None:
            return self._episode_end_writes(abandoned=True, now=now, end_run=(state, message))
        run_id, ending = self._run_uuid, _ending(state, message, now)

        def after(_) -> None:
            self._state, self._error, self._reason = state, ending["error"], ending["reason"]

        if not self._recorded:  # nothing of it is in the ledger, nor will be
            return _Write(None, after)
        return _Write(lambda: services.run_set_state(run_id=run_id, **ending), after)

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

        if not self._recorded:
            self._write(_Write(None, after))
            return
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
        if self._state == RunState.STOPPED:
            raise RunStopped(f"run {self.run_id} was stopped ({self._reason})")
        if self._state == RunState.ERROR:
            raise RunEnded(f"run {self.run_id} stopped with an error ({self._error})")

    def _refuse_when_last_episode_abandoned(self) -> None:
        n = self.config.num_episodes
        if n and self._episode is not None and self._completed + 1 >= n:
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
            progress=RunProgress(episodes=f"{self._completed}/{total}" if total else f"{self._completed} (no limit)",
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

    def __init__(self, write: Callable[[], Any] | None, after: Callable[[Any], None] | None = None):
        self.write, self.after = write, after


def _ending(state: RunState, message: str, now: datetime) -> dict[str, Any]:
    """The run's row as it ends in `state`: a stopped run's message is its reason, an error's its error."""
    stopped = state == RunState.STOPPED
    return {"state": state, "error": "" if stopped else message, "reason": message if stopped else "",
            "ended_at": now}
