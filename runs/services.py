"""Ledger writes. The run manager runs them on the ledger writer; each is a few statements at most."""

from __future__ import annotations

import functools
import json
import math
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Count, Max, Q, Sum
from django.utils import timezone

from gymenv.observations import Observation
from runs import live
from runs.models import OBSERVATION_INLINE_BYTES, Episode, Run, RunState, Step


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
               num_episodes: int, max_steps_per_episode: int, success_threshold: float | None,
               run_id: uuid.UUID | None = None, state: str = RunState.RUNNING,
               parent: tuple[uuid.UUID, int, int] | None = None) -> Run:
    """`parent`: a fork's source (run id, episode number, step number)."""
    parent_run, parent_episode, parent_step = parent if parent is not None else (None, None, None)
    return Run.objects.create(
        run_id=run_id or uuid.uuid4(), instance_id=instance_id, env_id=env_id, env_kwargs=finite_json(env_kwargs),
        env_spec=finite_json(env_spec), num_episodes=num_episodes, max_steps_per_episode=max_steps_per_episode,
        success_threshold=success_threshold, state=state, owner=process_owner(), parent_run_id=parent_run,
        parent_episode_num=parent_episode, parent_step_num=parent_step,
    )


def process_owner() -> str:
    """This process as "host:pid", the owner of the runs it creates."""
    return _owner(os.getpid())  # looked up per call: a forked child is a process of its own


@functools.cache
def _owner(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}"


def run_set_state(*, run_id, state: str, error: str = "", reason: str = "", ended_at: datetime | None = None) -> None:
    _update(Run, run_id, state=state, error=error, reason=reason, ended_at=ended_at)


@dataclass(frozen=True)
class RunTotals:
    """A run's totals over its ended episodes, as a resume finds them."""

    created_at: datetime
    completed: int
    successful: int
    steps: int
    reward: float


INTERRUPTED = "interrupted"  # the error of a run whose process died (runs_interrupt_stale)


def resumable_q() -> Q:
    """The runs a resume takes up: stopped on purpose, or left by a dead process."""
    return Q(state=RunState.STOPPED) | Q(state=RunState.ERROR, error=INTERRUPTED)


def run_resume(*, run_id, instance_id: str, open_episode_id: int | None) -> RunTotals | None:
    """Running again, owned by this process and `instance_id`, `open_episode_id` open again (the run's end
    closed it as abandoned); None, and nothing changed, when the run is no longer resumable (taken up
    meanwhile). The totals are recounted over the episodes that stay ended."""
    episodes = Episode.objects.filter(run_id=run_id)
    if open_episode_id is not None:
        episodes = episodes.exclude(pk=open_episode_id)
    totals = episodes.aggregate(completed=Count("pk"), successful=Count("pk", filter=Q(success=True)),
                                steps=Sum("total_steps"), reward=Sum("total_reward"))
    taken = Run.objects.filter(resumable_q(), pk=run_id).update(
        state=RunState.RUNNING, error="", reason="", ended_at=None, owner=process_owner(), instance_id=instance_id,
        completed_episodes=totals["completed"], successful_episodes=totals["successful"],
        total_steps=totals["steps"] or 0, total_reward=totals["reward"] or 0.0)
    if not taken:
        return None
    if open_episode_id is not None:
        Episode.objects.filter(pk=open_episode_id).update(
            ended_at=None, total_steps=0, total_reward=0.0, final_reward=None, terminated=False, truncated=False,
            done=False, success=False, abandoned=False)
    created_at = Run.objects.values_list("created_at", flat=True).get(pk=run_id)
    return RunTotals(created_at=created_at, completed=totals["completed"], successful=totals["successful"],
                     steps=totals["steps"] or 0, reward=totals["reward"] or 0.0)


@dataclass(frozen=True)
class CopiedEpisode:
    pk: int
    steps: int
    reward: float
    final_reward: float | None


def episode_copy(*, episode_id: int, run_id, upto_step: int, started_at: datetime) -> CopiedEpisode:
    """A fork's episode 1: the source episode's reset and its steps 1..upto_step, rows copied as stored
    (observations stay compressed), read and written in chunks."""
    source = Episode.objects.get(pk=episode_id)
    copy = Episode.objects.create(
        run_id=run_id, episode_num=1, seed=source.seed, options=source.options, reset_info=source.reset_info,
        started_at=started_at, observation_json=source.observation_json, observation_zlib=source.observation_zlib)
    Run.objects.filter(pk=run_id).update(started_at=started_at)
    steps, reward, final_reward, chunk = 0, 0.0, None, []
    for step in source.steps.filter(step_num__lte=upto_step).order_by("step_num").iterator(chunk_size=500):
        chunk.append(Step(episode_id=copy.pk, step_num=step.step_num, action=step.action, reward=step.reward,
                          terminated=step.terminated, truncated=step.truncated, info=step.info,
                          observation_json=step.observation_json, observation_zlib=step.observation_zlib,
                          created_at=step.created_at))
        steps, reward, final_reward = step.step_num, reward + (step.reward or 0.0), step.reward
        if len(chunk) == 500:
            Step.objects.bulk_create(chunk)
            chunk = []
    Step.objects.bulk_create(chunk)
    return CopiedEpisode(pk=copy.pk, steps=steps, reward=reward, final_reward=final_reward)


def run_set_totals(*, run_id, completed_episodes: int, successful_episodes: int, total_steps: int,
                   total_reward: float, **state) -> None:
    """The run's totals over its ended episodes (absolute values: the run manager is the only writer)."""
    _update(Run, run_id, completed_episodes=completed_episodes, successful_episodes=successful_episodes,
            total_steps=total_steps, total_reward=total_reward, **state)


def episode_open(*, run_id, episode_num: int, seed: int | None, observation: Any, info: dict,
                 started_at: datetime, first: bool, options: dict | None = None) -> int:
    pk = _insert(Episode, run_id=run_id, episode_num=episode_num, seed=seed, options=finite_json(options),
                 reset_info=finite_json(info), started_at=started_at, **pack_observation(observation))
    if first:
        _update(Run, run_id, started_at=started_at)
    return pk


def episodes_open(*, run_id, openings: list[tuple], started_at: datetime, first: bool) -> list[int]:
    """A vector instance's new episodes, each (episode_num, env_index, seed, observation, info), in one
    INSERT ... RETURNING; their ids in order. By hand because bulk_create's own work cost several times
    the INSERT on the vector step path; the model's other fields get their defaults, as bulk_create gives."""
    db = connections[DEFAULT_DB_ALIAS]
    quote = db.ops.quote_name
    defaults = {f.attname: f.get_default() for f in _EPISODE_FIELDS}
    params: list = []
    for num, index, seed, observation, info in openings:
        values = {**defaults, "run_id": run_id, "episode_num": num, "env_index": index, "seed": seed,
                  "reset_info": finite_json(info), "started_at": started_at, **pack_observation(observation)}
        params.extend(f.get_db_prep_save(values[f.attname], db) for f in _EPISODE_FIELDS)
    columns = ", ".join(quote(f.column) for f in _EPISODE_FIELDS)
    row = f"({', '.join(['%s'] * len(_EPISODE_FIELDS))})"
    sql = (f"INSERT INTO {quote(Episode._meta.db_table)} ({columns}) VALUES {', '.join([row] * len(openings))} "
           f"RETURNING {quote(Episode._meta.pk.column)}")
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [pk for (pk,) in cursor.fetchall()]
    if first:
        Run.objects.filter(pk=run_id).update(started_at=started_at)
    return ids


_EPISODE_FIELDS = [f for f in Episode._meta.concrete_fields if not f.primary_key]


def episodes_close(*, closes: list[dict]) -> None:
    """episode_close for many episodes (a vector step's), in one executemany of one UPDATE."""
    db = connections[DEFAULT_DB_ALIAS]
    ops, quote = db.ops, db.ops.quote_name
    table, pk = quote(Episode._meta.db_table), quote(Episode._meta.pk.column)
    sql = f"UPDATE {table} SET {', '.join(f'{quote(name)} = %s' for name in _CLOSE_FIELDS)} WHERE {pk} = %s"
    params = [[ops.adapt_datetimefield_value(c["ended_at"]) if name == "ended_at" else c[name]
               for name in _CLOSE_FIELDS] + [c["episode_id"]] for c in closes]
    with db.cursor() as cursor:
        cursor.executemany(sql, params)


_CLOSE_FIELDS = ("ended_at", "total_steps", "total_reward", "final_reward", "terminated", "truncated", "done",
                 "success", "abandoned")


def episode_close(*, episode_id: int, ended_at: datetime, total_steps: int, total_reward: float,
                  final_reward: float | None, terminated: bool, truncated: bool, done: bool, success: bool,
                  abandoned: bool) -> None:
    _update(Episode, episode_id, ended_at=ended_at, total_steps=total_steps, total_reward=total_reward,
            final_reward=final_reward, terminated=terminated, truncated=truncated, done=done, success=success,
            abandoned=abandoned)


def _insert(model: type[Episode], **values: Any) -> int:
    """`model.objects.create(**values).pk` at every reset, without the ORM's model instance, signals
    and query building: the fields the caller leaves out take their defaults, as the ORM gives them."""
    db = connections[DEFAULT_DB_ALIAS]
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    params = [f.get_db_prep_save(values[f.attname] if f.attname in values else f.get_default(), db) for f in fields]
    returning = db.features.can_return_columns_from_insert
    sql = _insert_sql(model._meta.db_table, model._meta.pk.column, tuple(f.column for f in fields), db.vendor,
                      returning)
    db.ensure_connection()
    with db.wrap_database_errors:
        cursor = db.connection.execute(sql, params)
        return cursor.fetchone()[0] if returning else cursor.lastrowid


@functools.cache
def _insert_sql(table: str, pk_column: str, columns: tuple[str, ...], vendor: str, returning: bool) -> str:
    quote, placeholder = connection.ops.quote_name, _placeholder(vendor)
    sql = (f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
           f"VALUES ({', '.join([placeholder] * len(columns))})")
    return f"{sql} RETURNING {quote(pk_column)}" if returning else sql


def _update(model: type[Run | Episode], pk: Any, **values: Any) -> None:
    """`model.objects.filter(pk=pk).update(**values)` at every episode's end, without the ORM's query
    building (most of an UPDATE's cost here): compiled once per set of columns, each value adapted
    by its own field, as the ORM adapts it."""
    db = connections[DEFAULT_DB_ALIAS]
    meta = model._meta
    fields = [meta.get_field(name) for name in values]
    params = [field.get_db_prep_save(value, db) for field, value in zip(fields, values.values(), strict=True)]
    params.append(meta.pk.get_db_prep_value(pk, db))
    sql = _update_sql(meta.db_table, meta.pk.column, tuple(field.column for field in fields), db.vendor)
    db.ensure_connection()
    with db.wrap_database_errors:
        db.connection.execute(sql, params)


@functools.cache
def _update_sql(table: str, pk_column: str, columns: tuple[str, ...], vendor: str) -> str:
    quote, placeholder = connection.ops.quote_name, _placeholder(vendor)
    assignments = ", ".join(f"{quote(column)} = {placeholder}" for column in columns)
    return f"UPDATE {quote(table)} SET {assignments} WHERE {quote(pk_column)} = {placeholder}"


def _placeholder(vendor: str) -> str:
    """The DB-API driver's own placeholder (sqlite3's ?, psycopg's %s): the SQL goes to it unrewritten."""
    return "?" if vendor == "sqlite" else "%s"


def step_build(*, episode_id: int, step_num: int, action: Any, observation: Any, reward: float | None,
               terminated: bool, truncated: bool, info: dict, created_at: datetime) -> list:
    """A Step row's INSERT parameters, in _STEP_FIELDS order. The JSON and compression work happens
    here, on the caller's thread, so the ledger writer's share of a step is the INSERT alone. JSON
    goes out as the fields would write it (their text, or PostgreSQL's Jsonb), made by orjson."""
    return step_rows(steps=[(episode_id, step_num, action, observation, reward, terminated, truncated, info,
                             created_at)])[0]


def step_record(*, row: list) -> None:
    """One INSERT (the episode's and run's totals are written when the episode ends), compiled once
    and sent on the DB-API connection itself: on the step path the ORM's query building, and then
    the cursor wrappers' per-call placeholder rewriting, cost more than the INSERT does. Errors are
    still Django's (wrap_database_errors), so a lost connection is told apart as everywhere else."""
    db = connections[DEFAULT_DB_ALIAS]  # once: every read through the `connection` proxy is a thread-local lookup
    db.ensure_connection()
    with db.wrap_database_errors:
        db.connection.execute(_step_insert_sql(db.vendor, 1), row)


def json_text(value: Any) -> str:
    """`value` as JSON text, non-finite floats as null (as finite_json makes them): orjson, or the
    standard library for what orjson refuses (integers past 64 bits, keys that are not strings)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(finite_json(value), allow_nan=False)


def _observation_columns(observation: Any) -> tuple[str | None, bytes | None]:
    """(observation_json text, observation_zlib) of a step: small plain observations inline, as
    pack_observation keeps them, from one encoding; images, frames and large ones by pack_observation."""
    # An Observation, or the codec's JSON of one (a vector instance's sub-env observation).
    image = isinstance(observation, Observation) and observation.image
    plain = None if image else observation.json() if isinstance(observation, Observation) else observation
    if plain is not None and not (isinstance(plain, list) and plain and isinstance(plain[0], list)):
        text = json_text(plain)
        if len(text) <= OBSERVATION_INLINE_BYTES:
            return text, None
    packed = pack_observation(observation)
    inline = packed["observation_json"]
    return (None if inline is None else json_text(inline)), packed["observation_zlib"]


def _json_param(vendor: str, text: str) -> Any:
    if vendor == "postgresql":
        from psycopg.types.json import Jsonb

        return Jsonb(text, dumps=_as_is)
    return text


def _as_is(text: str) -> str:
    return text


def step_rows(*, steps: list[tuple]) -> list[list]:
    """step_build for many steps (a batch's, a vector step's), each (episode_id, step_num, action,
    observation, reward, terminated, truncated, info, created_at). What is the same for every row (the
    connection, its vendor, a vector step's one time) is looked up once: per row it cost more than the JSON."""
    db = connections[DEFAULT_DB_ALIAS]
    vendor, adapt = db.vendor, db.ops.adapt_datetimefield_value
    empty = _json_param(vendor, "{}")
    rows = []
    when = created = None
    for episode_id, step_num, action, observation, reward, terminated, truncated, info, created_at in steps:
        if created_at is not when:
            when, created = created_at, adapt(created_at)
        obs_json, obs_zlib = _observation_columns(observation)
        values = (episode_id, step_num, reward, terminated, truncated, _json_param(vendor, json_text(action)),
                  _json_param(vendor, json_text(info)) if info else empty,
                  None if obs_json is None else _json_param(vendor, obs_json), obs_zlib, created)
        rows.append([values[i] for i in _STEP_ROW_ORDER])
    return rows


def steps_record(*, rows: list[list]) -> None:
    """Many steps' rows (step_build) in multi-row INSERTs of up to STEPS_PER_INSERT rows each: a
    batched or vector step is one statement, not one per row."""
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    with db.wrap_database_errors:
        for start in range(0, len(rows), STEPS_PER_INSERT):
            chunk = rows[start:start + STEPS_PER_INSERT]
            db.connection.execute(_step_insert_sql(db.vendor, len(chunk)), [value for row in chunk for value in row])


# 10 parameters a row: well under SQLite's 32,766 and PostgreSQL's 65,535 bound parameters a statement.
STEPS_PER_INSERT = 1024

_STEP_FIELDS = [f for f in Step._meta.concrete_fields if not f.primary_key]
# Where each of step_rows' values goes in a row (the INSERT's column order).
_STEP_ROW_ORDER = [("episode_id", "step_num", "reward", "terminated", "truncated", "action", "info", "observation_json",
                    "observation_zlib", "created_at").index(f.attname) for f in _STEP_FIELDS]



@functools.lru_cache(maxsize=256)
def _step_insert_sql(vendor: str, rows: int) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _STEP_FIELDS)
    row = f"({', '.join([_placeholder(vendor)] * len(_STEP_FIELDS))})"
    return f"INSERT INTO {quote(Step._meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)}"


def runs_interrupt_stale(*, keep: list | None = None, reason: str = INTERRUPTED) -> int:
    """Close runs a dead process left running or paused as `error`, their open episode kept and summed;
    such a run with no episode is deleted (history keeps no run without one: SPEC 7).

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
        if run.episodes.exists():
            _run_interrupt(run=run, reason=reason, now=now)
        else:
            run.delete()
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
