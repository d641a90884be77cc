"""Ledger reads: run statistics, run history, an episode's steps and the JSON Lines export."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Max, Sum
from django.utils import timezone

from gymenv.observations import encoded, npy_bytes
from gymsite.errors import UnknownRun
from runs.models import Episode, Run, Step
from runs.schemas import RunListOut, RunStatisticsOut, StepListOut


@dataclass(frozen=True)
class LiveEpisode:
    """The open episode's totals as the run manager holds them (they reach the DB when it ends)."""

    episode_num: int
    total_steps: int
    total_reward: float
    final_reward: float | None


def run_get(*, run_id: str | uuid.UUID) -> Run:
    try:
        return Run.objects.get(pk=uuid.UUID(str(run_id)))
    except (ValueError, Run.DoesNotExist):
        raise UnknownRun(f"no run {str(run_id)[:80]!r}") from None


def run_statistics(*, run_id: str | uuid.UUID, live: LiveEpisode | None = None) -> RunStatisticsOut:
    """SPEC 7 /run/statistics: totals over the run's episodes, the open one included."""
    run = run_get(run_id=run_id)
    episodes = []
    for ep in run.episodes.order_by("episode_num").defer("observation_json", "observation_zlib", "reset_info"):
        if ep.ended_at is None:
            _fill_open_episode(ep, live)
        episodes.append(ep)
    return _statistics(run, episodes)


def run_statistics_unrecorded(*, run: Run) -> RunStatisticsOut:
    """The statistics of a live run that has had no episode yet (its row is written with its first)."""
    return _statistics(run, [])


def _statistics(run: Run, episodes: list[Episode]) -> RunStatisticsOut:
    """Averages and the success rate are over the episodes that ended by themselves (done); abandoned
    ones count toward the run's length and are counted apart (SPEC 7)."""
    now = timezone.now()
    ended = [ep for ep in episodes if ep.ended_at is not None]
    done = [ep for ep in ended if ep.done]
    successful = sum(ep.success for ep in done)
    last = episodes[-1] if episodes else None
    return RunStatisticsOut.model_validate({
        "run_id": str(run.pk),
        "env_id": run.env_id,
        "instance_id": run.instance_id,
        "num_episodes": run.num_episodes,
        "max_steps_per_episode": run.max_steps_per_episode,
        "success_threshold": run.success_threshold,
        "state": run.state,
        "error": run.error or None,
        "reason": run.reason or None,
        "parent": _parent(run),
        "created_at": _iso(run.created_at),
        "start_time": _iso(run.started_at),
        "end_time": _iso(run.ended_at),
        "current_episode": last.episode_num if last else 0,
        "current_step": last.total_steps if last else 0,
        "completed_episodes": len(ended),
        "abandoned_episodes": len(ended) - len(done),
        "total_steps": sum(ep.total_steps for ep in episodes),
        "total_reward": _num(sum(ep.total_reward for ep in episodes)),
        "average_reward": _num(sum(ep.total_reward for ep in done) / len(done)) if done else 0.0,
        "average_steps": sum(ep.total_steps for ep in done) / len(done) if done else 0.0,
        "success_rate": successful / len(done) if done else 0.0,
        "successful_episodes": successful,
        "duration": _seconds(run.started_at, run.ended_at or now),
        "episodes": [_episode_summary(ep, now) for ep in episodes],
    })


def run_list(*, env_id: str | None = None, state: str | None = None, instance_id: str | None = None,
             page: int = 1, page_size: int = 50) -> RunListOut:
    """Run history, newest first (served by the run_newest / run_env_newest / run_state_newest indexes)."""
    runs = Run.objects.order_by("-created_at").defer("env_spec", "env_kwargs")
    if env_id:
        runs = runs.filter(env_id=env_id)
    if state:
        runs = runs.filter(state=state)
    if instance_id:
        runs = runs.filter(instance_id=instance_id)
    count = runs.count()
    offset = (page - 1) * page_size
    return RunListOut.model_validate({
        "runs": [run_summary(run) for run in runs[offset:offset + page_size]],
        "count": count,
        "page": page,
        "page_size": page_size,
        "num_pages": max(1, math.ceil(count / page_size)),
    })


def run_summary(run: Run) -> dict:
    return {
        "run_id": str(run.pk),
        "instance_id": run.instance_id,
        "env_id": run.env_id,
        "state": run.state,
        "error": run.error or None,
        "reason": run.reason or None,
        "parent": _parent(run),
        "num_episodes": run.num_episodes,
        "max_steps_per_episode": run.max_steps_per_episode,
        "completed_episodes": run.completed_episodes,
        "successful_episodes": run.successful_episodes,
        "total_steps": run.total_steps,
        "total_reward": _num(run.total_reward),
        "created_at": _iso(run.created_at),
        "start_time": _iso(run.started_at),
        "end_time": _iso(run.ended_at),
    }


def step_list(*, run_id: str, episode_num: int, page: int = 1, page_size: int = 100,
              obs_format: str | None = None) -> StepListOut:
    run = run_get(run_id=run_id)
    try:
        episode = run.episodes.only("pk").get(episode_num=episode_num)
    except Episode.DoesNotExist:
        raise UnknownRun(f"run {run.pk} has no episode {episode_num}", remedy=None) from None
    # Step numbers run 1..n without gaps, so a page is a range on the (episode, step_num) index,
    # as fast on the last page of a million-step episode as on the first.
    offset = (page - 1) * page_size
    steps = episode.steps.filter(step_num__gt=offset).order_by("step_num")[:page_size]
    count = episode.steps.count()
    return StepListOut.model_validate({
        "run_id": str(run.pk),
        "episode_num": episode_num,
        "steps": [_step_record(step, obs_format) for step in steps],
        "count": count,
        "page": page,
        "page_size": page_size,
        "num_pages": max(1, math.ceil(count / page_size)),
    })


def run_export_lines(*, run: Run) -> Generator[bytes, None, None]:
    """The run as JSON Lines: a run line, then each episode's line followed by its steps' lines.

    Two cursors walked side by side (episodes and steps both in id order, which is episode and
    step order), each read in chunks: memory stays flat however long the run.
    """
    yield _line({"type": "run", **run_summary(run), "env_kwargs": run.env_kwargs, "env_spec": run.env_spec,
                 "success_threshold": run.success_threshold})
    steps = Step.objects.filter(episode__run_id=run.pk).order_by("episode_id", "step_num").iterator(chunk_size=500)
    step = next(steps, None)
    for ep in run.episodes.order_by("pk").iterator(chunk_size=500):
        if ep.ended_at is None:
            _fill_open_episode(ep, None)
        yield _line({"type": "episode", **_episode_summary(ep, timezone.now()), "options": ep.options,
                     "started_at": _iso(ep.started_at), "ended_at": _iso(ep.ended_at),
                     "observation": ep.observation, "info": ep.reset_info})
        while step is not None and step.episode_id == ep.pk:
            yield _line({"type": "step", "episode_num": ep.episode_num, **_step_record(step, "json")})
            step = next(steps, None)


def _fill_open_episode(ep: Episode, live: LiveEpisode | None) -> None:
    """An open episode's row holds no totals yet: take the run manager's, or sum its committed steps."""
    if live is not None and live.episode_num == ep.episode_num:
        ep.total_steps, ep.total_reward, ep.final_reward = live.total_steps, live.total_reward, live.final_reward
        return
    agg = ep.steps.aggregate(n=Count("pk"), reward=Sum("reward"), last=Max("step_num"))
    ep.total_steps, ep.total_reward = agg["n"], agg["reward"] or 0.0
    ep.final_reward = ep.steps.only("reward").get(step_num=agg["last"]).reward if agg["last"] else None


def _episode_summary(ep: Episode, now: datetime) -> dict:
    return {
        "episode_num": ep.episode_num,
        "env_index": ep.env_index,
        "seed": ep.seed,
        "total_steps": ep.total_steps,
        "total_reward": _num(ep.total_reward),
        "final_reward": _num(ep.final_reward),
        "done": ep.done,
        "terminated": ep.terminated,
        "truncated": ep.truncated,
        "abandoned": ep.abandoned,
        "success": ep.success,
        "duration": _seconds(ep.started_at, ep.ended_at or now),
    }


def _parent(run: Run) -> dict | None:
    if run.parent_run_id is None:
        return None
    return {"run_id": str(run.parent_run_id), "episode_num": run.parent_episode_num, "step_num": run.parent_step_num}


def _step_record(step: Step, obs_format: str | None) -> dict:
    return {
        "step_num": step.step_num,
        "action": step.action,
        "reward": step.reward,
        "terminated": step.terminated,
        "truncated": step.truncated,
        "observation": stored_observation(step, obs_format),
        "info": step.info,
        "created_at": _iso(step.created_at),
    }


def stored_observation(row: Step | Episode, obs_format: str | None):
    """A recorded observation in `obs_format`, as the live answers give it: images default to png. The
    ledger keeps images (PNG) and frames (.npy) as arrays, so png and npy give them back bit for bit; an
    observation it keeps as JSON stays JSON whatever the format asked."""
    if obs_format == "none":
        return None
    array = row.observation_array
    if array is None:
        return row.observation
    png = row.observation_png
    if png is not None and obs_format in (None, "png"):
        return encoded("png", png, array)
    if obs_format == "npy":
        return encoded("npy", npy_bytes(array), array)
    return array.tolist()


def _line(obj: dict) -> bytes:
    return json.dumps(obj, allow_nan=False, separators=(",", ":")).encode() + b"\n"


def _num(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 6)
