"""REST operations for runs: the live instances' run managers and the ledger's history.

Sync operations: they touch the ORM, and Django runs sync views in a worker thread.
"""

from collections.abc import AsyncIterator, Generator, Iterator
from itertools import islice

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.http import StreamingHttpResponse
from ninja import Query, Router, Schema
from pydantic import Field

from gymenv.schemas import DOOR_ERRORS, ErrorOut, ObsFormat
from gymsite import routing
from gymsite.responses import answer
from runs import replay, selectors
from runs.live import live_manager
from runs.schemas import (
    RunListOut,
    RunResetOut,
    RunState,
    RunStatisticsOut,
    RunStatusOut,
    StepListOut,
    VerifyIn,
    VerifyOut,
)

router = Router(tags=["runs"])

# 415: a POST with a body that is not JSON (gymenv.middleware.json_bodies_only) on the run routes too.
ERRORS = {**DOOR_ERRORS, 404: ErrorOut, 409: ErrorOut, 415: ErrorOut, 422: ErrorOut, 500: ErrorOut}


def for_default_and_each_instance(method: str, path: str, **kwargs):
    return routing.for_default_and_each_instance(router, method, path, errors=ERRORS, **kwargs)


@for_default_and_each_instance("GET", "/run/status", response=RunStatusOut, summary="Progress of the current run")
def run_status(request, instance_id: str):
    """State, current episode and step, and episodes ended out of the run's total."""
    return answer(request.engine.run_manager(instance_id).status())


@for_default_and_each_instance("GET", "/run/statistics", response=RunStatisticsOut,
                               summary="Statistics of the current run")
def run_statistics(request, instance_id: str):
    """Totals, averages, success rate and one summary per episode (the open one included)."""
    return answer(request.engine.run_manager(instance_id).statistics())


@for_default_and_each_instance("POST", "/run/reset", response=RunResetOut, summary="Start a new run")
def run_reset(request, instance_id: str):
    """Ends the current run (an unfinished one is `stopped`, "reset by client") and starts a new one."""
    return answer(request.engine.run_manager(instance_id).reset())


@for_default_and_each_instance("POST", "/run/start", response=RunStatusOut, summary="Start or resume the run")
def run_start(request, instance_id: str):
    """Running: nothing to do. Paused: resumes. Completed, stopped or error: starts a new run."""
    return answer(request.engine.run_manager(instance_id).start())


@for_default_and_each_instance("POST", "/run/pause", response=RunStatusOut, summary="Pause the run")
def run_pause(request, instance_id: str):
    """Until resume, reset and step answer 409 run_paused."""
    return answer(request.engine.run_manager(instance_id).pause())


@for_default_and_each_instance("POST", "/run/resume", response=RunStatusOut, summary="Resume a paused run")
def run_resume(request, instance_id: str):
    return answer(request.engine.run_manager(instance_id).resume())


# PostgreSQL text cannot hold NUL: a filter with one would fail in the database, not match nothing.
NO_NUL = r"^[^\x00]*$"


class RunFilters(Schema):
    env_id: str | None = Field(None, max_length=200, pattern=NO_NUL)
    state: RunState | None = None
    instance_id: str | None = Field(None, max_length=100, pattern=NO_NUL)
    page: int = Field(1, ge=1, le=1_000_000)
    page_size: int = Field(50, ge=1, le=500)


class StepPage(Schema):
    page: int = Field(1, ge=1, le=100_000_000)
    page_size: int = Field(100, ge=1, le=1000)
    obs_format: ObsFormat | None = Field(None, description="json, png, npy or none; recorded images default to png")


@router.get("/runs", response={200: RunListOut, **DOOR_ERRORS, 422: ErrorOut}, summary="Run history, newest first")
def run_list(request, filters: Query[RunFilters]):
    """Every recorded run (live or finished), filtered by env_id, state or instance_id, page by page."""
    return answer(selectors.run_list(**filters.dict()))


@router.get("/runs/{run_id}", response={200: RunStatisticsOut, **ERRORS}, summary="One run's statistics")
def run_detail(request, run_id: str):
    """The /run/statistics of any recorded run, live or finished."""
    manager = live_manager(run_id)
    live = manager.live_episode(run_id) if manager is not None else None
    return answer(selectors.run_statistics(run_id=run_id, live=live))


@router.get("/runs/{run_id}/episodes/{episode_num}/steps", response={200: StepListOut, **ERRORS},
            summary="An episode's steps, page by page")
def step_list(request, run_id: str, episode_num: int, params: Query[StepPage]):
    """Each step's action, reward, flags, observation (after the step) and info, in order."""
    return answer(selectors.step_list(run_id=run_id, episode_num=episode_num, **params.dict()))


@router.post("/runs/{run_id}/verify", response={200: VerifyOut, **ERRORS}, summary="Replay a recorded episode")
def run_verify(request, run_id: str, body: VerifyIn):
    """Replays the episode's seed, options and actions in a fresh env and reports the first step whose
    observation, reward or flags differ from the record (`matched`: none does)."""
    return answer(replay.run_verify(run_id=run_id, episode_num=body.episode_num))


# The 200 is a stream, not a model: Ninja cannot declare it from `response=`, so openapi_extra does.
EXPORT_200 = {"description": "The run as JSON Lines: one JSON object a line, its `type` run, episode or step.",
              "content": {"application/x-ndjson": {"schema": {"type": "string"}}}}


@router.get("/runs/{run_id}/export.jsonl", response=ERRORS, openapi_extra={"responses": {200: EXPORT_200}},
            summary="Export a run as JSON Lines")
def run_export(request, run_id: str):
    """One JSON object a line: the run, then each episode followed by its steps (`type` says which)."""
    run = selectors.run_get(run_id=run_id)  # a 404 before the stream starts, not a cut-off stream
    response = JSONLinesResponse(selectors.run_export_lines(run=run))
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.jsonl"'
    return response


class JSONLinesResponse(StreamingHttpResponse):
    """Streams a sync generator of lines as an async iterator: Django would read a sync one into a list."""

    batch = 200

    def __init__(self, lines: Generator[bytes, None, None], **kwargs):
        super().__init__(_batches(lines, self.batch), content_type="application/x-ndjson", **kwargs)


async def _batches(lines: Generator[bytes, None, None], size: int) -> AsyncIterator[bytes]:
    """Lines pulled in batches on the sync thread (thread_sensitive), where the generator's database
    cursors live; between batches that thread is free for other work. The connection the generator
    opened there is closed at the end, on that thread: the API handler fires request_finished on the
    event loop's thread, which would not reach it."""
    take = sync_to_async(_take, thread_sensitive=True)
    try:
        while chunk := await take(lines, size):
            yield chunk
    finally:
        await sync_to_async(_finish, thread_sensitive=True)(lines)


def _take(lines: Iterator[bytes], n: int) -> bytes:
    return b"".join(islice(lines, n))


def _finish(lines: Generator[bytes, None, None]) -> None:
    lines.close()  # a generator cut short (client gone): ends its cursors here, on their thread
    close_old_connections()
