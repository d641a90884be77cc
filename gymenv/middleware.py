"""Async-native middleware for the cross-cutting checks: Host, bearer token, JSON-only bodies.

Async-only on purpose: under ASGI a sync middleware costs a thread hop per request.
"""

import hmac

from django.core.exceptions import DisallowedHost
from django.utils.decorators import async_only_middleware

from gymsite.responses import error_response

OPEN_PATHS = ("/health",)
TOKEN_COOKIE = "gymsite_token"


@async_only_middleware
def host_check(get_response):
    """Refuses a foreign Host (DNS rebinding) on every route, with the JSON error body."""

    async def middleware(request):
        try:
            request.get_host()
        except DisallowedHost:
            return error_response("the Host header names a host this server does not serve", "bad_host", 400)
        return await get_response(request)

    return middleware


@async_only_middleware
def bearer_token(get_response):
    """With a token configured (the server's `token`), every route but /health needs
    `Authorization: Bearer <token>`. Browsers (admin, dashboard) may instead carry it in a cookie
    set by visiting `/?token=<token>`."""

    async def middleware(request):
        # Requests that no gymsite server made (Django's test client) have no server, and no token.
        server = getattr(request, "server", None)
        token = server.token if server is not None else None
        if not token or request.path in OPEN_PATHS:
            return await get_response(request)
        expected = f"Bearer {token}".encode()
        given = request.headers.get("Authorization", "").encode()
        cookie = request.COOKIES.get(TOKEN_COOKIE, "").encode()
        query = request.GET.get("token", "").encode() if request.method == "GET" else b""
        if hmac.compare_digest(given, expected) or hmac.compare_digest(cookie, token.encode()):
            return await get_response(request)
        if query and hmac.compare_digest(query, token.encode()):
            response = await get_response(request)
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict")
            return response
        return error_response("missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                              "unauthorized", 401, headers={"WWW-Authenticate": "Bearer"})

    return middleware


JSON_TYPES = ("application/json",)


@async_only_middleware
def json_bodies_only(get_response):
    """A body that is not declared JSON is refused (415) before any view runs: this is also what
    keeps cross-site HTML form posts from touching an env."""

    async def middleware(request):
        if request.method in ("POST", "PUT", "PATCH") and _has_body(request):
            content_type = request.content_type or ""
            if content_type not in JSON_TYPES and not content_type.endswith("+json"):
                return error_response(f"request bodies must be JSON (Content-Type: application/json), "
                                      f"not {content_type[:60] or 'undeclared'}", "unsupported_media_type", 415)
        return await get_response(request)

    return middleware


def _has_body(request) -> bool:
    length = request.META.get("CONTENT_LENGTH")
    return bool(length and length != "0") or "chunked" in request.headers.get("Transfer-Encoding", "")
