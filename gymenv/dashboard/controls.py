"""The dashboard's controls: start, pause, resume and reset a run, open and delete instances.

Each is one engine call, the very one the REST operation makes (gymenv/api.py, runs/api.py).
POST only, behind Django's CSRF check (the page sends the token from its form or, from a script,
in X-CSRFToken). A script asking for JSON gets the REST answer or error body; a plain form post
is sent back to the page it came from.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.http import HttpResponse, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from gymsite.api import REMEDIES, status_of
from gymsite.errors import GymsiteError, InvalidArgument
from gymsite.responses import answer, error_response

RUN_ACTIONS = ("start", "pause", "resume", "reset")


@require_POST
def run_control(request, instance_id: str, action: str):
    def act():
        if action not in RUN_ACTIONS:
            raise InvalidArgument(f"no run action {action[:40]!r}: expected one of {', '.join(RUN_ACTIONS)}")
        return getattr(request.engine.run_manager(instance_id), action)()

    return _respond(request, act)


@require_POST
def instance_open(request):
    env_id = request.POST.get("env_id") or None
    return _respond(request, lambda: async_to_sync(request.engine.create)(env_id=env_id), status=201)


@require_POST
def instance_delete(request, instance_id: str):
    return _respond(request, lambda: async_to_sync(request.engine.delete)(instance_id))


def _respond(request, act, status: int = 200) -> HttpResponse:
    try:
        result = act()
    except GymsiteError as err:
        if _wants_json(request):
            return error_response(err.worded(REMEDIES), err.code, status_of(err))
        return HttpResponse(err.message, status=status_of(err), content_type="text/plain; charset=utf-8")
    if _wants_json(request):
        return answer(result, status=status)
    return HttpResponseRedirect(_back(request))


def _wants_json(request) -> bool:
    return "application/json" in request.META.get("HTTP_ACCEPT", "")


def _back(request) -> str:
    target = request.POST.get("next", "/")
    return target if url_has_allowed_host_and_scheme(target, allowed_hosts=None) and target.startswith("/") else "/"
