"""The dashboard's pages: live instances, run history, a run, an episode (steps and replay), two runs compared.

Pages are server-rendered (every link is there without scripts); scripts only update `/` from the
feed, draw the charts and play replays. Reads go through the ledger's selectors and the engine.
"""

from __future__ import annotations

import base64
import datetime
from functools import wraps

import gymnasium
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.html import json_script
from django.views.decorators.http import require_GET

from gymenv import catalogue
from gymenv.dashboard import controls
from gymenv.dashboard.feed import feed
from gymsite.api import REMEDIES, status_of
from gymsite.errors import GymsiteError
from gymsite.responses import error_response, json_bytes
from runs import frames, selectors
from runs.dashboard import HistoryFilters, env_ids, episode_series, run_history
from runs.live import live_manager

STATES = ("idle", "running", "paused", "completed", "stopped", "error")
STEPS_PER_PAGE = 100
RUN_ACTIONS = [(action, action.capitalize()) for action in controls.RUN_ACTIONS]


def page_errors(view):
    """A page for an unknown run or episode says so in HTML, with the status REST would give."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except GymsiteError as err:
            return render(request, "gymenv/dashboard/error.html", {"message": err.message},
                          status=status_of(err))

    return wrapped


def json_errors(view):
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except GymsiteError as err:
            return error_response(err.worded(REMEDIES), err.code, status_of(err))

    return wrapped


@require_GET
def home(request):
    engine = request.engine
    base = request.build_absolute_uri("/").rstrip("/")
    live = feed(engine, focus=request.GET.get("focus"))
    return render(request, "gymenv/home.html", {
        "engine": engine,
        "feed": live,
        "groups": _grouped(live["instances"]),
        "mcp_url": f"{base}/mcp",
        "run_manager": engine.config.run is not None,
        "run_actions": RUN_ACTIONS,
        "nav": "live",
    })


def _grouped(instances: list[dict]) -> list[tuple[str, str, list[dict]]]:
    titles = {"active": "Active", "idle": "Idle", "finished": "Finished"}
    return [(key, title, [i for i in instances if i["group"] == key]) for key, title in titles.items()]


@require_GET
@json_errors
def feed_json(request):
    return HttpResponse(json_bytes(feed(request.engine, focus=request.GET.get("focus"))),
                        content_type="application/json", headers={"Cache-Control": "no-store"})


@require_GET
@page_errors
def run_page(request, run_id):
    manager = live_manager(str(run_id))
    stats = selectors.run_statistics(run_id=run_id, live=manager.live_episode(str(run_id)) if manager else None)
    return render(request, "gymenv/dashboard/run.html", {
        "stats": stats,
        "chart": {"threshold": stats.success_threshold,
                  "runs": [{"name": _short(stats.run_id), "series": episode_series(run_id=run_id)}]},
    })


@require_GET
@page_errors
def episode_page(request, run_id, episode_num: int):
    page = _int(request.GET.get("page"), 1)
    steps = selectors.step_list(run_id=str(run_id), episode_num=episode_num, page=page, page_size=STEPS_PER_PAGE)
    run = selectors.run_get(run_id=run_id)
    episode = run.episodes.only("episode_num", "seed", "ended_at", "total_steps").get(episode_num=episode_num)
    rows = [{**step.model_dump(), "detail": json_script(step.model_dump())} for step in steps.steps]
    return render(request, "gymenv/dashboard/episode.html", {
        "run": run, "episode": episode, "steps": steps, "rows": rows,
        "renders": "rgb_array" in _render_modes(run.env_id),
        "pages": range(1, steps.num_pages + 1) if steps.num_pages > 1 else [],
    })


@require_GET
@json_errors
def replay_json(request, run_id, episode_num: int):
    """All frames in one answer (base64 PNGs): the player then runs without a request per frame."""
    replay = frames.episode_replay(run_id=str(run_id), episode_num=episode_num)
    body = {"success": True, "shape": list(replay.shape),
            "frames": [base64.b64encode(png).decode("ascii") for png in replay.frames]}
    return HttpResponse(json_bytes(body), content_type="application/json",
                        headers={"Cache-Control": "private, max-age=300"})


@require_GET
@json_errors
def replay_gif(request, run_id, episode_num: int):
    replay = frames.episode_replay(run_id=str(run_id), episode_num=episode_num)
    return HttpResponse(frames.gif(replay), content_type="image/gif", headers={
        "Content-Disposition": f'attachment; filename="run-{str(run_id)[:8]}-episode-{episode_num}.gif"'})


@require_GET
def history(request):
    filters = HistoryFilters(env_id=request.GET.get("env", "")[:200], state=_choice(request.GET.get("state"), STATES),
                             since=_date(request.GET.get("since")), until=_date(request.GET.get("until")))
    found = run_history(filters=filters, page=_int(request.GET.get("page"), 1))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "gymenv/dashboard/history.html", {
        "found": found, "filters": filters, "states": STATES, "env_ids": env_ids(), "query": query.urlencode(),
        "nav": "runs",
    })


@require_GET
@page_errors
def compare(request):
    ids = [request.GET.get("a", ""), request.GET.get("b", "")]
    picked = request.GET.getlist("run")
    if picked:
        ids = (picked + ["", ""])[:2]
    stats = [selectors.run_statistics(run_id=run_id) for run_id in ids]
    thresholds = {s.success_threshold for s in stats} - {None}
    return render(request, "gymenv/dashboard/compare.html", {
        "stats": stats,
        "chart": {"threshold": thresholds.pop() if len(thresholds) == 1 else None,
                  "runs": [{"name": _short(s.run_id), "series": episode_series(run_id=s.run_id)} for s in stats]},
    })


def _render_modes(env_id: str) -> list[str]:
    try:
        return catalogue.render_modes(env_id)
    except (gymnasium.error.Error, ImportError):  # an env no longer installed: the page still shows its steps
        return []


def _short(run_id: str) -> str:
    return str(run_id)[:8]


def _int(text: str | None, default: int) -> int:
    return int(text) if text and text.isdigit() and len(text) < 10 else default


def _choice(text: str | None, allowed: tuple[str, ...]) -> str:
    return text if text in allowed else ""


def _date(text: str | None) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(text) if text else None
    except ValueError:
        return None

