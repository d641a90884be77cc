"""Browser pages: the dashboard (what this server serves, live instances, runs, frames)."""

import base64

from django.http import HttpResponse
from django.shortcuts import render

from gymsite.api import REMEDIES, status_of
from gymsite.errors import GymsiteError
from gymsite.responses import error_response

CHART_EPISODES = 200  # the chart shows the latest episodes of a run
CHART_WIDTH, CHART_HEIGHT = 480, 120


def home(request):
    engine = request.engine
    base = request.build_absolute_uri("/").rstrip("/")
    instances = [instance_panel(inst) for inst in engine.instances()]
    return render(request, "gymenv/home.html", {
        "engine": engine,
        "instances": instances,
        "mcp_url": f"{base}/mcp",
        "run_manager": engine.config.run is not None,
    })


def instance_panel(inst) -> dict:
    panel = {**inst.summary().model_dump(), "frame": inst.render_mode == "rgb_array" and not inst.needs_reset}
    if inst.run is not None:
        stats = inst.run.statistics()
        panel["run"] = inst.run.status().model_dump()
        panel["stats"] = stats.model_dump()
        panel["chart"] = reward_chart([e.total_reward for e in stats.episodes[-CHART_EPISODES:]])
    return panel


def reward_chart(rewards: list[float | None]) -> dict | None:
    """An SVG polyline of reward per episode, scaled to the chart box (no JavaScript, no CDN)."""
    values = [r if r is not None else 0.0 for r in rewards]
    if not values:
        return None
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = CHART_WIDTH / max(1, len(values) - 1)
    points = " ".join(f"{i * step:.1f},{CHART_HEIGHT - (v - low) / span * CHART_HEIGHT:.1f}"
                      for i, v in enumerate(values))
    return {"points": points, "low": low, "high": high, "count": len(values),
            "width": CHART_WIDTH, "height": CHART_HEIGHT}


async def frame(request, instance_id: str):
    """The instance's current frame as a PNG (rgb_array instances with an episode in progress)."""
    try:
        inst = request.engine.get(instance_id)
        frame = await inst.call(inst.op_render, "rgb_array")
    except GymsiteError as err:
        return error_response(err.worded(REMEDIES), err.code, status_of(err))
    return HttpResponse(base64.b64decode(frame.render), content_type="image/png",
                        headers={"Cache-Control": "no-store"})


def not_found(request, exception=None):
    return error_response(f"no route {request.path[:100]!r}; see /docs for the API", "not_found", 404)


def server_error(request):
    """Any unhandled exception, REST or page (Ninja re-raises what no handler maps): the traceback
    goes to the log, the client gets the one error shape."""
    return error_response("internal server error: the server log has the details", "internal_error", 500)
