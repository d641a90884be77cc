"""The one ASGI application: `/mcp` to the MCP server, everything else to Django, one lifespan.

Django's ASGI handler refuses lifespan events, and the MCP session manager must be running
before `/mcp` answers, so this small app owns the lifespan. Built by a factory because the
session manager can be started only once per MCP server.
"""

import asyncio
import contextlib
import functools
import io
import logging
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymsite.settings")

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.handlers.asgi import ASGIHandler, get_script_prefix  # noqa: E402
from django.db import close_old_connections  # noqa: E402
from django.urls import set_script_prefix  # noqa: E402

log = logging.getLogger(__name__)

BROWSER_PREFIXES = ("/admin/", "/static/", "/dashboard/")
REAP_INTERVAL = 30.0
DRAIN_LIMIT = 64 * 1024 * 1024


class DjangoHandler(ASGIHandler):
    """Django's ASGI handler with the middleware list named by `middleware_setting`.

    API routes get a lean async-only stack; the admin and pages get the full browser stack.
    """

    def __init__(self, middleware_setting: str):
        self.middleware_setting = middleware_setting
        super().__init__()

    def load_middleware(self, is_async=False):
        # BaseHandler reads settings.MIDDLEWARE; swap in our list while it builds the chain
        # (this runs once, at app creation, before any request).
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = getattr(settings, self.middleware_setting)
        try:
            super().load_middleware(is_async=is_async)
        finally:
            settings.MIDDLEWARE = full


class ApiHandler(DjangoHandler):
    """The API's request cycle: Django's, less what costs thread hops on every request.

    Django's ASGIHandler runs each request in a ThreadSensitiveContext (a fresh thread per request
    for sync work) and sends request_started/finished through sync_to_async: that alone cut the
    step rate to a third. Here the async engine views need neither; the sync views (the ledger's,
    which use the ORM) get the connection hygiene those signals gave, in their own thread.
    URL resolution is cached per path: the same few paths are resolved thousands of times a second.
    """

    def __init__(self):
        super().__init__("API_MIDDLEWARE")
        self.max_body = settings.DATA_UPLOAD_MAX_MEMORY_SIZE

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


def create_app(*, engine=None):
    """The ASGI app serving `engine` (default: the configured process-wide engine)."""
    django.setup(set_prefix=False)
    from gymenv.engine import get_engine, set_engine
    from gymenv.mcp_server import create_mcp_app

    if engine is None:
        engine = get_engine()
    else:
        set_engine(engine)
    browser = DjangoHandler("MIDDLEWARE")
    api = ApiHandler()
    mcp_app, mcp_lifespan = create_mcp_app(engine=engine, allowed_hosts=list(settings.ALLOWED_HOSTS),
                                           token=settings.GYMSITE_TOKEN)

    async def lifespan(receive, send):
        await receive()  # lifespan.startup
        async with contextlib.AsyncExitStack() as stack:
            try:
                await stack.enter_async_context(mcp_lifespan())
                reaper = asyncio.create_task(reap_idle_instances(engine))
                stack.callback(reaper.cancel)
            except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        # Closing envs can block (GL contexts, subprocess envs): not on the event loop.
        await asyncio.to_thread(engine.shutdown)
        await send({"type": "lifespan.shutdown.complete"})

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await lifespan(receive, send)
        path = scope.get("path", "")
        if path == "/mcp":
            return await mcp_app(scope, receive, send)
        if scope["type"] != "http":
            return  # websockets: nothing here speaks them; uvicorn closes the connection
        if is_browser_path(path):
            return await browser(scope, receive, send)
        return await api(scope, receive, send)

    return app


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
        except Exception:  # noqa: BLE001 - the reaper must outlive one failed close
            log.exception("closing idle instances failed")
