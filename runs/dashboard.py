"""Ledger reads for the dashboard: per-episode series for charts, the run history, an episode's actions."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.utils import timezone

from gymsite.errors import UnknownRun
from runs.models import Episode, Run
from runs.selectors import run_get, run_summary

CHART_EPISODES = 500  # a chart shows a run's latest episodes; the run page links to all of them


def episode_series(*, run_id: str | uuid.UUID, last: int = CHART_EPISODES) -> dict[str, list]:
    """Return and length of the run's latest `last` ended episodes (abandoned ones are not averaged,
    so they are not charted either), oldest first: one indexed query, a few columns."""
    rows = list(Episode.objects.filter(run_id=run_id, ended_at__isnull=False, abandoned=False)
                .order_by("-episode_num").values_list("episode_num", "total_reward", "total_steps", "success")[:last])
    rows.reverse()
    return {
        "episode": [r[0] for r in rows],
        "reward": [r[1] if r[1] is not None and math.isfinite(r[1]) else None for r in rows],
        "length": [r[2] for r in rows],
        "success": [r[3] for r in rows],
    }


@dataclass(frozen=True)
class HistoryFilters:
    env_id: str = ""
    state: str = ""
    since: date | None = None
    until: date | None = None


def run_history(*, filters: HistoryFilters, page: int, page_size: int = 50) -> dict[str, Any]:
    """Every run, newest first, filtered by env, state and the day it was created (inclusive)."""
    runs = Run.objects.order_by("-created_at").defer("env_spec", "env_kwargs")
    if filters.env_id:
        runs = runs.filter(env_id=filters.env_id)
    if filters.state:
        runs = runs.filter(state=filters.state)
    if filters.since:
        runs = runs.filter(created_at__gte=_day_start(filters.since))
    if filters.until:
        runs = runs.filter(created_at__lt=_day_start(filters.until) + timedelta(days=1))
    count = runs.count()
    num_pages = max(1, math.ceil(count / page_size))
    page = min(max(1, page), num_pages)
    offset = (page - 1) * page_size
    return {"runs": [run_summary(r) for r in runs[offset:offset + page_size]], "count": count,
            "page": page, "num_pages": num_pages}


def recent_runs(*, limit: int) -> list[dict]:
    return [run_summary(r) for r in Run.objects.order_by("-created_at").defer("env_spec", "env_kwargs")[:limit]]


def env_ids() -> list[str]:
    return sorted(Run.objects.values_list("env_id", flat=True).distinct())


@dataclass(frozen=True)
class RecordedEpisode:
    """What a replay needs: the env as the run made it, the episode's seed and its actions in order."""

    run_id: str
    env_id: str
    env_kwargs: dict
    seed: Any
    actions: list[Any]
    ended: bool


def episode_actions(*, run_id: str | uuid.UUID, episode_num: int) -> RecordedEpisode:
    run = run_get(run_id=run_id)
    try:
        episode = run.episodes.only("pk", "seed", "ended_at").get(episode_num=episode_num)
    except Episode.DoesNotExist:
        raise UnknownRun(f"run {run.pk} has no episode {episode_num}", remedy=None) from None
    actions = list(episode.steps.order_by("step_num").values_list("action", flat=True))
    return RecordedEpisode(run_id=str(run.pk), env_id=run.env_id, env_kwargs=run.env_kwargs or {},
                           seed=episode.seed, actions=actions, ended=episode.ended_at is not None)


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
