"""The one ASGI app of a server: `/mcp` to the MCP server, everything else to Django, one lifespan.

Django's ASGI handler refuses lifespan events, and the MCP session manager must be running
before `/mcp` answers, so a Starlette router owns the lifespan. Built by a factory because the
session manager can be started only once per MCP server (gymsite/serving.py: build_app calls it).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import logging
import os
from typing import TYPE_CHECKING, Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymsite.settings")

import django
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.exception import convert_exception_to_response
from django.db import close_old_connections
from django.http.request import split_domain_port, validate_host
from django.urls import set_script_prefix
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from gymenv.engine import Engine
    from gymsite.serving import ServerConfig

log = logging.getLogger(__name__)

BROWSER_PREFIXES = ("/admin/", "/static/", "/dashboard/")
REAP_INTERVAL = 30.0
DRAIN_LIMIT = 64 * 1024 * 1024


class GymsiteRequest(ASGIRequest):
    """A request that carries its server (`request.engine`, `request.server`) and checks Host
    against that server's names: settings stay as loaded, whatever address a server binds."""

    engine: Engine
    server: ServerConfig
    allowed_hosts: list[str]

    def get_host(self) -> str:
        host = self._get_raw_host()
        domain, _ = split_domain_port(host)
        if domain and validate_host(domain, self.allowed_hosts):
            return host
        raise DisallowedHost(f"Invalid HTTP_HOST header: {host[:100]!r}")


class ServerHandler(ASGIHandler):
    """Django's ASGI handler for one server: its requests carry that server's engine and config."""

    def __init__(self, *, engine: Engine, config: ServerConfig, allowed_hosts: list[str]):
        self.engine, self.config, self.allowed_hosts = engine, config, allowed_hosts
        request_class = type("Request", (GymsiteRequest,), {
            "engine": engine, "server": config, "allowed_hosts": allowed_hosts})
        self.request_class = request_class
        super().__init__()


class BrowserHandler(ServerHandler):
    """The admin and the pages: Django's full request cycle and settings.MIDDLEWARE."""


class ApiHandler(ServerHandler):
    """The API's request cycle: Django's, less what costs thread hops on every request.

    Django's ASGIHandler runs each request in a ThreadSensitiveContext (a fresh thread per request
    for sync work) and sends request_started/finished through sync_to_async: that alone cut the
    step rate to a third. Here the async engine views need neither; the sync views (the ledger's,
    which use the ORM) get the connection hygiene those signals gave, in their own thread.
    URL resolution is cached per path: the same few paths are resolved thousands of times a second.
    Checked against Django 5.2; every live-server REST test runs through it, on the Django installed.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_body = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    def load_middleware(self, is_async=False):
        # settings.API_MIDDLEWARE are async-only function middleware: they need none of the sync/async
        # adaptation BaseHandler.load_middleware does for settings.MIDDLEWARE, so the chain is built here.
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        handler = convert_exception_to_response(self._get_response_async)
        for path in reversed(settings.API_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(path)(handler))
        self._middleware_chain = handler

    async def __call__(self, scope, receive, send):
        if declared_length(scope) > self.max_body:
            return await refuse_oversized(receive, send, self.max_body)
        body = await read_body(receive, self.max_body)
        if body is None:  # a chunked body that kept going past the limit
            return await refuse_oversized(receive, send, self.max_body)
        set_script_prefix(get_script_prefix(scope))
        request, response = self.create_request(scope, io.BytesIO(body))
        if request is not None:
            response = await self.run_get_response(request)
        await self.send_response(response, send)
        if response.streaming:
            # Only streaming responses hold resources (iterators, files). Closing a plain one just
            # fires request_finished, whose receivers close DB connections: the loop thread has none.
            response.close()

    def resolve_request(self, request):
        request.resolver_match = resolve_path(request.path_info)
        return request.resolver_match

    def make_view_atomic(self, view):
        view = super().make_view_atomic(view)
        if asyncio.iscoroutinefunction(view):
            return view

        @functools.wraps(view)
        def with_connection_hygiene(request, *args, **kwargs):
            close_old_connections()
            try:
                return view(request, *args, **kwargs)
            finally:
                close_old_connections()

        return with_connection_hygiene


@functools.lru_cache(maxsize=4096)
def resolve_path(path: str):
    from django.urls import get_resolver

    return get_resolver().resolve(path)


async def read_body(receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes `limit` bytes (chunked bodies declare no length)."""
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks, size = [body], len(body)
    while message.get("more_body"):
        message = await receive()
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
    return b"".join(chunks)


def is_browser_path(path: str) -> bool:
    return path == "/" or path.startswith(BROWSER_PREFIXES)


def create_app(*, engine: Engine, config: ServerConfig, allowed_hosts: list[str]):
    """The ASGI app serving `engine`: a Starlette router, `/mcp` exactly (a Mount would make only
    `/mcp/` work), everything else to Django's browser or API handler."""
    from starlette.routing import Route, Router

    from gymenv.mcp_server import create_mcp_app

    django.setup(set_prefix=False)
    browser = BrowserHandler(engine=engine, config=config, allowed_hosts=allowed_hosts)
    api = ApiHandler(engine=engine, config=config, allowed_hosts=allowed_hosts)
    mcp_app, mcp_lifespan = create_mcp_app(engine=engine, allowed_hosts=allowed_hosts, token=config.token)

    async def to_django(scope, receive, send):
        if scope["type"] != "http":
            return  # websockets: nothing here speaks them; uvicorn closes the connection
        handler = browser if is_browser_path(scope["path"]) else api
        await handler(scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with mcp_lifespan():
            reaper = asyncio.create_task(reap_idle_instances(engine))
            try:
                yield
            finally:
                reaper.cancel()
                # Closing envs can block (GL contexts, subprocess envs): not on the event loop.
                await asyncio.to_thread(engine.shutdown)

    # Django as the default, not a Mount(""): a Mount's pattern stops at a newline, so a path with
    # %0A in it got Starlette's plain-text 404 instead of the API's JSON one.
    return Router(routes=[Route("/mcp", mcp_app)], default=to_django, lifespan=lifespan)


def declared_length(scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


async def refuse_oversized(receive, send, limit: int) -> None:
    """413 without holding the body: it is read and dropped (clients that send the whole body
    before reading the answer see a reset otherwise), up to a bound past which we just hang up."""
    from gymsite.responses import json_bytes

    dropped = 0
    while dropped < DRAIN_LIMIT:
        message = await receive()
        dropped += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    body = json_bytes({"success": False, "error": f"request body too large: at most {limit} bytes",
                       "code": "payload_too_large"})
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


async def reap_idle_instances(engine) -> None:
    interval = min(REAP_INTERVAL, max(1.0, engine.config.idle_timeout / 4))
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(engine.reap_idle)
        except Exception:
            log.exception("closing idle instances failed")
