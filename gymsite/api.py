"""The project's one NinjaAPI: routers of each app, strict JSON in, one error shape out."""

import functools
import json
import re
from inspect import iscoroutinefunction

import orjson
from django.http import Http404, HttpResponseNotAllowed
from django.urls import URLPattern
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.parser import Parser

from gymenv.api import router as envs_router
from gymsite import errors
from gymsite.errors import GymsiteError, describe_validation_errors
from gymsite.responses import error_response
from runs.api import router as runs_router


class StrictJSONParser(Parser):
    """JSON as RFC 8259 has it: NaN and Infinity tokens are refused, not read as floats.

    orjson first (it refuses them too, in a tenth of the time). The standard library reads what orjson
    refuses (and says what is wrong), and bodies with a run of 19 digits or more: orjson reads an integer
    past 64 bits as a float, and seeds go to 2**128."""

    def parse_body(self, request):
        body = request.body
        if not _LONG_NUMBER.search(body):
            try:
                return orjson.loads(body)
            except orjson.JSONDecodeError:
                pass
        return json.loads(body, parse_constant=_refuse_constant)


_LONG_NUMBER = re.compile(rb"\d{19}")


def _refuse_constant(token: str):
    raise ValueError(f"{token} is not JSON")


class GymsiteAPI(NinjaAPI):
    """A NinjaAPI whose 405s carry the one error shape. Ninja's PathView answers a method that no
    operation of a path takes with a plain-text HttpResponseNotAllowed, before any operation or
    exception handler runs: so each path's view is wrapped, once, where the URLs are made."""

    @property
    def urls(self):
        patterns, app_name, namespace = super().urls
        return [json_method_not_allowed(p) for p in patterns], app_name, namespace


def json_method_not_allowed(pattern: URLPattern) -> URLPattern:
    view = pattern.callback
    if iscoroutinefunction(view):
        @functools.wraps(view)
        async def wrapped(request, *args, **kwargs):
            return method_not_allowed(request, await view(request, *args, **kwargs))
    else:
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            return method_not_allowed(request, view(request, *args, **kwargs))
    return URLPattern(pattern.pattern, wrapped, pattern.default_args, pattern.name)


def method_not_allowed(request, response):
    if not isinstance(response, HttpResponseNotAllowed):
        return response
    allowed = ", ".join(sorted(m.strip() for m in response["Allow"].split(",")))
    return error_response(f"{request.method} is not allowed on {request.path[:100]}: it takes {allowed}",
                          "method_not_allowed", 405, headers={"Allow": allowed})


api = GymsiteAPI(
    title="gymsite",
    version="1",
    description="Drive Gymnasium environments over REST (and MCP at /mcp). Every run, episode and step is kept.",
    parser=StrictJSONParser(),
    docs_url="/docs",
    openapi_url="/openapi.json",
    urls_namespace="api",
)
api.add_router("", envs_router)
api.add_router("", runs_router)

# A slot frees when a client deletes its instance or the reaper closes an idle one, which the
# server cannot foresee: a short fixed wait keeps a client's retries few and its wait short.
INSTANCE_RETRY_AFTER_SECONDS = 5


# The REST door's wire form of each domain error: its status, and what to do next in REST's words.
STATUS: dict[type[GymsiteError], int] = {
    errors.InvalidArgument: 422,
    errors.EnvNotAllowed: 403,
    errors.UnknownInstance: 404,
    errors.UnknownRun: 404,
    errors.RunTrackingOff: 404,
    errors.StateConflict: 409,
    errors.InstanceLimit: 429,
    errors.EnvFailed: 500,
    errors.LedgerFailed: 500,
    errors.EnvTimeout: 504,
}
REMEDIES = {
    "list_instances": "GET /envs lists the live ones",
    "list_runs": "GET /runs lists the recorded runs",
    "reset_run": "POST /run/reset starts a new run",
    "resume_run": "POST /run/resume to continue",
    "close_env": "POST /close closes its env",
    "delete_instance": "DELETE /envs/{id} one you no longer need",
}


def status_of(exc: GymsiteError) -> int:
    return next((STATUS[cls] for cls in type(exc).__mro__ if cls in STATUS), 500)


@api.exception_handler(GymsiteError)
def gymsite_error(request, exc: GymsiteError):
    return error_response(exc.worded(REMEDIES), exc.code, status_of(exc))


@api.exception_handler(errors.InstanceLimit)
def instance_limit(request, exc: errors.InstanceLimit):
    return error_response(exc.worded(REMEDIES), exc.code, status_of(exc),
                          headers={"Retry-After": str(INSTANCE_RETRY_AFTER_SECONDS)})


@api.exception_handler(ValidationError)
def validation_error(request, exc: ValidationError):
    return error_response(describe_validation_errors(exc.errors), "invalid_argument", 422)


@api.exception_handler(HttpError)
def http_error(request, exc: HttpError):
    if exc.status_code == 400:
        return error_response("the request body is not valid JSON (strict JSON: no NaN or Infinity)",
                              "bad_request", 400)
    return error_response(str(exc), "error", exc.status_code)


@api.exception_handler(Http404)
def not_found(request, exc):
    return error_response("not found", "not_found", 404)
