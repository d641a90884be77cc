"""The run manager of a vector instance (SPEC 12): each sub-env plays its own episodes in one run.

Episodes are numbered across sub-envs in the order they start, each recorded with its env_index;
the run counts them all toward num_episodes. A request's N steps (and the episodes that end or start
in it) are committed in one transaction, the step rows in one multi-row INSERT. The run controls
(status, pause, reset...) are RunManager's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone

from gymenv.engine import RecorderSpec
from gymenv.schemas import VectorResetProgress, VectorStepProgress
from gymsite.errors import LedgerFailed, ResetRequired, RunCompleted, RunPaused
from runs import services
from runs.manager import ERROR_MESSAGE_CHARS, OpenEpisode, RunManager, _ending, _Write, episode_success
from runs.models import RunState

# A sub-env whose episode ends: how (the last step's info and flags), or None when it is abandoned.
Closing = tuple[int, dict | None]


def recorder_for(spec: RecorderSpec) -> RunManager:
    """The recorder factory the composition root plugs into the engine."""
    return VectorRunManager(spec) if spec.num_envs else RunManager(spec)


class VectorRunManager(RunManager):
    """A RunManager whose open episodes are one per sub-env (`_open`, by env_index). It implements the
    engine's VectorRecorder, whose on_reset/on_step take a request's N sub-envs: the overrides below
    change those two signatures on purpose; the run controls are inherited as they are."""

    def __init__(self, spec: RecorderSpec):
        assert spec.num_envs
        self.num_envs = spec.num_envs
        self._open: dict[int, OpenEpisode] = {}
        super().__init__(spec)

    # -- the owner thread ---------------------------------------------------------------------

    def before_reset(self) -> None:
        with self._lock:
            self._refuse_when_over()
            if self._state == RunState.PAUSED:
                raise RunPaused(self._paused_message())
            limit = self.config.num_episodes  # 0: no limit
            if limit and self._open and self._completed + len(self._open) >= limit:
                # The reset would abandon the run's last episodes, completing it (SPEC 7, as for one env).
                self._write(self._close_writes([(i, None) for i in self._open], now=timezone.now())[0])
                raise RunCompleted(self._completed_message())

    def on_reset(self, *, seeds: list[int | None], observations: list, infos: list[dict],  # type: ignore[override]
                 mask: list[bool] | None) -> VectorResetProgress:
        now = timezone.now()
        with self._lock:
            self._refuse_when_over()
            which = [i for i in range(self.num_envs) if mask is None or mask[i]]
            abandoned = [(i, None) for i in which if i in self._open]
            writes: list[_Write] = []
            if abandoned:
                close, completes = self._close_writes(abandoned, now=now)
                if completes:
                    self._write(close)
                    raise RunCompleted(self._completed_message())
                writes = [close]
            opened = self._open_writes([(i, seeds[i], observations[i], infos[i]) for i in which], now=now)
            if not self._recorded:  # the run's row goes with its first episodes
                writes.insert(0, self._run_create_writes())
            self._write(*writes, *([opened] if opened is not None else []))
            return VectorResetProgress(run_id=self.run_id, episode_nums=self._episode_nums(),
                                       total_episodes=self.config.num_episodes,
                                       max_steps=self.config.max_steps_per_episode)

    def before_step(self) -> None:
        with self._lock:
            self._refuse_when_over()
            if self._state == RunState.PAUSED:
                raise RunPaused(self._paused_message())
            if not self._open:
                raise ResetRequired(f"run {self.run_id} has no episode in progress (it was reset or restarted); "
                                    "call reset to start its next episodes")

    def on_step(self, *, actions: list, observations: list,  # type: ignore[override]
                rewards: list[float | None], terminated: list[bool], truncated: list[bool], infos: list[dict],
                resets: list[tuple[int, Any, dict]]) -> VectorStepProgress:
        now = timezone.now()
        with self._lock:
            if not self._open:  # the run was reset by a request while the envs stepped
                raise ResetRequired(f"run {self.run_id} was reset while this step ran; call reset "
                                    "to start the new run's first episodes")
            steps, stepped = [], []
            ended: list[Closing] = []
            limit = self.config.max_steps_per_episode
            for i, ep in self._open.items():
                given = rewards[i]
                reward = given if given is not None and math.isfinite(given) else None
                step_num = ep.steps + 1
                term, trunc = bool(terminated[i]), bool(truncated[i]) or step_num >= limit
                steps.append((ep.pk, step_num, actions[i], observations[i], reward, term, trunc, infos[i], now))
                stepped.append((ep, step_num, ep.reward + (reward or 0.0), reward))
                if term or trunc:
                    ended.append((i, {"info": infos[i], "terminated": term, "truncated": trunc}))
            # Built here, on the owner thread: the writer's share is the INSERT alone.
            rows = services.step_rows(steps=steps)

            def recorded(_) -> None:
                for ep, step_num, total, reward in stepped:
                    ep.steps, ep.reward, ep.final_reward = step_num, total, reward
                self._current_step = max((ep.steps for ep in self._open.values()), default=0)

            writes = [_Write(lambda: services.steps_record(rows=rows), recorded)]
            completes = False
            if ended:
                close, completes = self._close_writes(ended, now=now, after_steps=stepped)
                writes.append(close)
            opened = self._open_writes([(i, None, obs, info) for i, obs, info in resets], now=now) if (
                resets and not completes) else None
            if opened is not None:
                writes.append(opened)
            try:
                # Steps alone are one INSERT; episodes that end or start add a few statements.
                self._write(*writes, single_statement=len(writes) == 1 and len(rows) <= services.STEPS_PER_INSERT)
            except LedgerFailed as exc:
                self._fail(f"a step could not be recorded: {exc.message}"[:ERROR_MESSAGE_CHARS])
                raise
            return VectorStepProgress(
                run_id=self.run_id, episode_nums=self._episode_nums(),
                step_nums=[self._open[i].steps if i in self._open else 0 for i in range(self.num_envs)],
                completed_episodes=self._completed, total_episodes=self.config.num_episodes,
                run_state=self._state.value)

    # -- internals (called with the lock held) ----------------------------------------------------

    def _episode_nums(self) -> list[int | None]:
        return [self._open[i].num if i in self._open else None for i in range(self.num_envs)]

    def _open_writes(self, openings: list[tuple[int, int | None, Any, dict]], *, now: datetime) -> _Write | None:
        """Start an episode for each (env_index, seed, observation, info), in one INSERT, while the run has
        episodes left to start: its episodes are its first num_episodes, so it completes when the last
        of them ends. A sub-env with none left steps on unrecorded. None when none starts."""
        if self.config.num_episodes:  # 0: no limit
            openings = openings[:max(0, self.config.num_episodes - self._last_episode_num)]
        if not openings:
            return None
        first_num = self._last_episode_num + 1
        numbered = [(first_num + k, *opening) for k, opening in enumerate(openings)]
        run_id, first = self._run_uuid, self._last_episode_num == 0

        def write() -> list[int]:
            return services.episodes_open(run_id=run_id, openings=numbered, started_at=now, first=first)

        def after(pks: list[int]) -> None:
            for pk, (num, index, *_rest) in zip(pks, numbered, strict=True):
                self._open[index] = OpenEpisode(pk=pk, num=num, started_at=now)
                self._last_episode_num = num

        return _Write(write, after)

    def _close_writes(self, closing: Sequence[Closing], *, now: datetime, after_steps: list | None = None,
                      end_run: tuple[RunState, str] | None = None) -> tuple[_Write, bool]:
        """End the open episodes of these sub-envs: done (with the last step's info and flags) or, with
        None, abandoned; each counts toward num_episodes. `after_steps`: the totals of the steps written
        with them. Returns the write and whether the run ends with it."""
        totals = {id(ep): (steps, total, reward) for ep, steps, total, reward in (after_steps or [])}
        completed, successful = self._completed, self._successful
        total_steps, total_reward = self._total_steps, self._total_reward
        closes = []
        for i, how in closing:
            ep = self._open[i]
            steps, reward, final_reward = totals.get(id(ep), (ep.steps, ep.reward, ep.final_reward))
            success = how is not None and episode_success(
                info=how["info"] or {}, total_reward=reward, threshold=self.threshold,
                terminated=how["terminated"], truncated=how["truncated"], final_reward=final_reward)
            closes.append({"episode_id": ep.pk, "ended_at": now, "total_steps": steps, "total_reward": reward,
                           "final_reward": final_reward, "terminated": bool(how and how["terminated"]),
                           "truncated": bool(how and how["truncated"]), "done": how is not None,
                           "success": success, "abandoned": how is None})
            completed, successful = completed + 1, successful + int(success)
            total_steps, total_reward = total_steps + steps, total_reward + reward
        state: dict[str, Any] = {}
        if end_run is not None:
            state = _ending(*end_run, now)
        elif self.config.num_episodes and completed >= self.config.num_episodes:
            state = _ending(RunState.COMPLETED, "", now)
        run_id, closed = self._run_uuid, [i for i, _ in closing]

        def write() -> None:
            services.episodes_close(closes=closes)
            services.run_set_totals(run_id=run_id, completed_episodes=completed, successful_episodes=successful,
                                    total_steps=total_steps, total_reward=total_reward, **state)

        def after(_) -> None:
            for i in closed:
                self._open.pop(i, None)
            self._completed, self._successful = completed, successful
            self._total_steps, self._total_reward = total_steps, total_reward
            if state:
                self._state, self._error, self._reason = RunState(state["state"]), state["error"], state["reason"]

        return _Write(write, after), bool(state)

    def _end_run_writes(self, state: RunState, message: str) -> _Write:
        if not self._open:
            return super()._end_run_writes(state, message)
        return self._close_writes([(i, None) for i in self._open], now=timezone.now(), end_run=(state, message))[0]

    def _new_run(self, run_id: Any = None, *, recorded: bool = False) -> None:
        super()._new_run(run_id, recorded=recorded)
        self._open = {}
