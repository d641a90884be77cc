"""The dashboard's live feed: what `/` shows, as one JSON document the page polls.

Short polling, not server-sent events: one small GET a second per open tab keeps no connection
or task open on the server per viewer, passes every proxy, needs no reconnection logic, and
the page's state (what is open, selected, scrolled) never depends on a stream's lifetime. The
feed is cheap to answer: instance and run state come from memory, run totals from one query
over the live runs, the chart of the one instance the viewer watches from one more.
"""

from __future__ import annotations

import time
from typing import Any

from gymsite.errors import GymsiteError
from runs.dashboard import episode_series, recent_runs
from runs.models import Run

IDLE_AFTER = 60.0  # seconds without a call: an instance is idle, listed apart from the active ones
FINISHED_STATES = ("completed", "stopped", "error")
RECENT_RUNS = 10


def feed(engine, *, focus: str | None) -> dict[str, Any]:
    """Every live instance with its run's progress and totals, the latest runs of the ledger, and, for
    the instance `focus` (default: the default instance), its reward/length series and current frame."""
    now = time.time()
    instances = engine.instances()
    statuses = {inst.instance_id: inst.run.status() for inst in instances if inst.run is not None}
    # With the run manager off the ledger is not read at all (its tables may not even exist then).
    recording = engine.config.run is not None
    totals = {str(row["run_id"]): row for row in Run.objects.filter(
        pk__in=[s.run_id for s in statuses.values()]).values(
        "run_id", "completed_episodes", "successful_episodes", "total_reward", "total_steps", "success_threshold")
    } if recording else {}
    rows = [_instance_row(inst, statuses.get(inst.instance_id), totals, now) for inst in instances]
    by_id = {inst.instance_id: inst for inst in instances}
    watched = by_id.get(focus or "") or by_id.get("default") or next(iter(by_id.values()), None)
    return {
        "instances": rows,
        "recent_runs": recent_runs(limit=RECENT_RUNS) if recording else [],
        "focus": _focus(watched, statuses.get(watched.instance_id), totals) if watched else None,
    }


def _instance_row(inst, status, totals: dict, now: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "instance_id": inst.instance_id, "env_id": inst.env_id, "render_mode": inst.render_mode,
        "needs_reset": inst.needs_reset, "episode_over": inst.episode_over,
        "idle_seconds": round(now - inst.last_used_at, 1), "run": None,
    }
    if status is not None:
        run = totals.get(status.run_id, {})
        completed = run.get("completed_episodes") or 0
        row["run"] = {
            **status.model_dump(exclude={"success"}),
            "average_reward": run["total_reward"] / completed if completed else None,
            "success_rate": run["successful_episodes"] / completed if completed else None,
            "total_steps": run.get("total_steps", 0),
        }
    row["group"] = _group(row, now - inst.last_used_at)
    return row


def _group(row: dict, idle_for: float) -> str:
    run = row["run"]
    if run is not None and run["state"] in FINISHED_STATES:
        return "finished"
    if idle_for > IDLE_AFTER or (run is not None and run["state"] == "idle"):
        return "idle"
    return "active"


def _focus(inst, status, totals: dict) -> dict[str, Any]:
    return {
        "instance_id": inst.instance_id,
        "run_id": status.run_id if status else None,
        "threshold": totals.get(status.run_id, {}).get("success_threshold") if status else None,
        "series": episode_series(run_id=status.run_id) if status else None,
        "frame": _frame(inst),
    }


def _frame(inst) -> str | None:
    """The current frame as a data URL, in the feed itself: a separate image request per poll would
    double the page's requests."""
    if inst.render_mode != "rgb_array" or inst.needs_reset:
        return None
    try:
        frame = inst.call_sync(inst.op_render, "rgb_array")
    except GymsiteError:
        return None  # the episode ended or the env went away between the check and the render
    return f"data:image/png;base64,{frame.render}" if frame.type == "image_base64" else None

