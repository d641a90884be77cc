"""Ledger writes. The run manager runs them on the ledger writer; each is a few statements at most."""

from __future__ import annotations

import functools
import math
import os
import socket
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from gymenv.observations import Observation
from runs import live
from runs.models import Episode, Run, RunState, Step


def finite_json(value: Any) -> Any:
    """`value` with non-finite floats as None: JSON (and PostgreSQL's jsonb) has no NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    return value


def pack_observation(observation: Any) -> dict:
    try:
        return Episode.pack_observation(observation)
    except ValueError:  # a NaN slipped through: keep the rest of the observation
        plain = observation.json() if isinstance(observation, Observation) else observation
        return Episode.pack_observation(finite_json(plain))


def run_create(*, instance_id: str, env_id: str, env_kwargs: dict, env_spec: dict | None,
               num_episodes: int, max_steps_per_episode: int, success_threshold: float | None) -> Run:
    return Run.objects.create(
        instance_id=instance_id, env_id=env_id, env_kwargs=finite_json(env_kwargs), env_spec=finite_json(env_spec),
        num_episodes=num_episodes, max_steps_per_episode=max_steps_per_episode,
        success_threshold=success_threshold, state=RunState.RUNNING, owner=process_owner(),
    )


def process_owner() -> str:
    """This process as "host:pid", the owner of the runs it creates."""
    return _owner(os.getpid())  # looked up per call: a forked child is a process of its own


@functools.cache
def _owner(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


def run_set_state(*, run_id, state: str, error: str = "", ended_at: datetime | None = None) -> None:
    Run.objects.filter(pk=run_id).update(state=state, error=error, ended_at=ended_at)


def run_set_totals(*, run_id, completed_episodes: int, successful_episodes: int, total_steps: int,
                   total_reward: float, **state) -> None:
    """The run's totals over its ended episodes (absolute values: the run manager is the only writer)."""
    Run.objects.filter(pk=run_id).update(
        completed_episodes=completed_episodes, successful_episodes=successful_episodes,
        total_steps=total_steps, total_reward=total_reward, **state,
    )


def episode_open(*, run_id, episode_num: int, seed: int | None, observation: Any, info: dict,
                 started_at: datetime, first: bool) -> int:
    episode = Episode.objects.create(
        run_id=run_id, episode_num=episode_num, seed=seed, reset_info=finite_json(info),
        started_at=started_at, **pack_observation(observation),
    )
    if first:
        Run.objects.filter(pk=run_id).update(started_at=started_at)
    return episode.pk


def episode_close(*, episode_id: int, ended_at: datetime, total_steps: int, total_reward: float,
                  final_reward: float | None, terminated: bool, truncated: bool, done: bool, success: bool,
                  abandoned: bool) -> None:
    Episode.objects.filter(pk=episode_id).update(
        ended_at=ended_at, total_steps=total_steps, total_reward=total_reward, final_reward=final_reward,
        terminated=terminated, truncated=truncated, done=done, success=success, abandoned=abandoned,
    )


def step_build(*, episode_id: int, step_num: int, action: Any, observation: Any, reward: float | None,
               terminated: bool, truncated: bool, info: dict, created_at: datetime) -> list:
    """A Step row's INSERT parameters, in _STEP_FIELDS order. The JSON and compression work happens
    here, on the caller's thread, so the ledger writer's share of a step is the INSERT alone; values
    go through the backend's own adapters (what the fields would call, minus their layers)."""
    ops = connections[DEFAULT_DB_ALIAS].ops
    packed = pack_observation(observation)
    row = {
        "episode_id": episode_id, "step_num": step_num, "reward": reward,
        "terminated": terminated, "truncated": truncated,
        "action": ops.adapt_json_value(finite_json(action), None),
        "info": ops.adapt_json_value(finite_json(info) if info else {}, None),
        "observation_json": None if packed["observation_json"] is None
        else ops.adapt_json_value(packed["observation_json"], None),
        "observation_zlib": packed["observation_zlib"],
        "created_at": ops.adapt_datetimefield_value(created_at),
    }
    return [row[f.attname] for f in _STEP_FIELDS]


def step_record(*, row: list) -> None:
    """One INSERT (the episode's and run's totals are written when the episode ends), compiled once:
    on the step path the ORM's per-call query building cost twice what running the INSERT does."""
    db = connections[DEFAULT_DB_ALIAS]  # once: every read through the `connection` proxy is a thread-local lookup
    with db.cursor() as cursor:
        cursor.execute(_step_insert_sql(db.vendor), row)


_STEP_FIELDS = [f for f in Step._meta.concrete_fields if not f.primary_key]


@functools.cache
def _step_insert_sql(vendor: str) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _STEP_FIELDS)
    return f"INSERT INTO {quote(Step._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(_STEP_FIELDS))})"


def runs_interrupt_stale(*, keep: list | None = None, reason: str = "interrupted") -> int:
    """Close runs a dead process left running or paused as `error`, their open episode kept and summed.

    Processes sharing the database must not close each other's live runs, so a run is stale only if
    its owner is a process of this host that is gone (or this process, when the run is not in `keep`:
    a previous engine of it, or a crashed process whose pid it reuses), or if it has no owner (runs
    made before owners were recorded). Runs of another host are left alone: whether their process
    lives cannot be told from here.

    `keep`: run ids not to touch (default: this process's live runs). Returns how many were closed.
    """
    if keep is None:
        keep = live.live_run_ids()
    now = timezone.now()
    open_runs = Run.objects.filter(state__in=[RunState.RUNNING, RunState.PAUSED]).exclude(pk__in=keep)
    stale = [run for run in open_runs.only("pk", "owner") if _owner_is_gone(run.owner)]
    for run in stale:
        _run_interrupt(run=run, reason=reason, now=now)
    return len(stale)


def runs_close_lost(*, run_id: str, reason: str) -> bool:
    """The process that owned `run_id` (a Ray actor) died: close its open runs of that instance as
    `error` with `reason`, their open episode kept and summed. True when the instance was lost (a run
    closed now, or before, for `reason`); False when its runs had ended otherwise (it was deleted)."""
    try:
        run = Run.objects.only("instance_id", "owner").get(pk=run_id)
    except (Run.DoesNotExist, ValueError, ValidationError):
        return False
    mine = Run.objects.filter(instance_id=run.instance_id, owner=run.owner)
    now = timezone.now()
    open_runs = list(mine.filter(state__in=[RunState.RUNNING, RunState.PAUSED]).only("pk"))
    for open_run in open_runs:
        _run_interrupt(run=open_run, reason=reason, now=now)
    return bool(open_runs) or mine.filter(state=RunState.ERROR, error=reason).exists()


def _run_interrupt(*, run: Run, reason: str, now: datetime) -> None:
    with transaction.atomic():
        _episodes_close_from_steps(run=run)
        totals = run.episodes.aggregate(
            completed=Count("pk"), successful=Count("pk", filter=Q(success=True)),
            steps=Sum("total_steps"), reward=Sum("total_reward"),
        )
        run_set_totals(
            run_id=run.pk, completed_episodes=totals["completed"], successful_episodes=totals["successful"],
            total_steps=totals["steps"] or 0, total_reward=totals["reward"] or 0.0,
            state=RunState.ERROR, error=reason, ended_at=now,
        )


def _owner_is_gone(owner: str) -> bool:
    host, _, pid_text = owner.rpartition(":")
    pid = int(pid_text) if pid_text.isdigit() else 0
    if not host or pid <= 0:  # no owner, or not one this code wrote: nothing will ever close it otherwise
        return True
    if host != socket.gethostname():
        return False
    return pid == os.getpid() or not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":
        return True  # there os.kill(pid, 0) terminates the process: assume it lives
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _episodes_close_from_steps(*, run: Run) -> None:
    # The episode rows of a dead process's open episode were never updated: sum their steps.
    for episode in run.episodes.filter(ended_at__isnull=True).only("pk", "started_at"):
        agg = episode.steps.aggregate(n=Count("pk"), reward=Sum("reward"), last=Max("step_num"))
        last = None
        if agg["last"]:
            last = episode.steps.only("created_at", "reward", "terminated", "truncated").get(step_num=agg["last"])
        episode_close(
            episode_id=episode.pk, ended_at=last.created_at if last else episode.started_at,
            total_steps=agg["n"], total_reward=agg["reward"] or 0.0,
            final_reward=last.reward if last else None,
            terminated=last.terminated if last else False, truncated=last.truncated if last else False,
            done=False, success=False, abandoned=True,
        )
