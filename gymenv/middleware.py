"""Async-native middleware for the cross-cutting checks: Host, Origin, bearer token, JSON-only bodies.

Async-only on purpose: under ASGI a sync middleware costs a thread hop per request.
"""

import gzip
import hmac
import re
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpResponseRedirect
from django.http.request import split_domain_port, validate_host
from django.utils.cache import patch_vary_headers
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


STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")


@async_only_middleware
def cross_origin(get_response):
    """Refuses (403) a state-changing request a browser sent from another site, as /mcp does.

    A page on any site can make a browser POST here (a form, or fetch with mode "no-cors"), and a
    tokenless server has nothing else to tell it from the dashboard. Clients that are not browsers
    send no Origin and pass.
    """

    async def middleware(request):
        if request.method in STATE_CHANGING and not _same_site(request):
            return error_response("cross-site requests cannot change this server: the request's Origin "
                                  "(or Sec-Fetch-Site) says another site sent it", "cross_origin", 403)
        return await get_response(request)

    return middleware


def _same_site(request) -> bool:
    # META, not request.headers: building the headers mapping costs more than this whole check.
    if request.META.get("HTTP_SEC_FETCH_SITE") == "cross-site":
        return False
    origin = request.META.get("HTTP_ORIGIN")
    if origin is None:
        return True
    if origin == f"{request.scheme}://{request.get_host()}" or origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parts = urlsplit(origin)
    host, _ = split_domain_port(parts.netloc)
    # "*" lets any Host in, which says nothing about which sites may send requests.
    named = [pattern for pattern in request.allowed_hosts if pattern != "*"]
    return parts.scheme in ("http", "https") and bool(host) and validate_host(host, named)


@async_only_middleware
def bearer_token(get_response):
    """With a token configured (the server's `token`), every route but /health and the sign-in page
    needs `Authorization: Bearer <token>`. Browsers (admin, dashboard) carry it in a cookie instead,
    set by the sign-in page or by visiting `/?token=<token>` (which then redirects to the URL
    without it, so the token stays out of the address bar and the history); a browser without it
    gets the sign-in page, API clients the JSON 401."""

    async def middleware(request):
        # Requests that no gymsite server made (Django's test client) have no server, and no token.
        server = getattr(request, "server", None)
        token = server.token if server is not None else None
        if not token or request.path in OPEN_PATHS or request.path == SIGN_IN_PATH:
            return await get_response(request)
        expected = f"Bearer {token}".encode()
        given = request.headers.get("Authorization", "").encode()
        cookie = request.COOKIES.get(TOKEN_COOKIE, "").encode()
        query = request.GET.get("token", "").encode() if request.method == "GET" else b""
        if query and hmac.compare_digest(query, token.encode()):
            if _wants_html(request):
                return token_cookie_redirect(request, token)
            return set_token_cookie(await get_response(request), token)  # a script: answered where it asked
        if hmac.compare_digest(given, expected) or hmac.compare_digest(cookie, token.encode()):
            return await get_response(request)
        if _wants_html(request):
            from gymenv.dashboard.signin import sign_in_page

            return sign_in_page(request, status=401, wrong=bool(query))
        return error_response("missing or wrong bearer token: send 'Authorization: Bearer <token>'",
                              "unauthorized", 401, headers={"WWW-Authenticate": "Bearer"})

    return middleware


SIGN_IN_PATH = "/dashboard/sign-in"


def token_cookie_redirect(request, token: str) -> HttpResponseRedirect:
    """The same URL less its `token` parameter, with the token in an HttpOnly cookie (scripts cannot
    read it). SameSite=Lax: a link to the dashboard from elsewhere still opens it signed in; requests
    that change anything are guarded by CSRF tokens and the Origin check, not by the cookie."""
    query = request.GET.copy()
    query.pop("token", None)
    clean = request.path + (f"?{query.urlencode()}" if query else "")
    return set_token_cookie(HttpResponseRedirect(clean), token)


def set_token_cookie(response, token: str):
    response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Lax")
    return response


def _wants_html(request) -> bool:
    return request.method == "GET" and "text/html" in request.META.get("HTTP_ACCEPT", "")


JSON_TYPES = ("application/json",)


@async_only_middleware
def json_bodies_only(get_response):
    """A body that is not declared JSON is refused (415) before any view runs (cross-site form
    posts are `cross_origin`'s to refuse: an empty one has no body to check)."""

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
    return bool(length and length != "0") or "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "")


_ACCEPTS_GZIP = re.compile(r"\bgzip\b(?!\s*;\s*q=0(\.0*)?\b)")
GZIP_MIN_BYTES = 1024  # smaller answers (a CartPole step) cost more to compress than they save


@async_only_middleware
def gzip_large_answers(get_response):
    """Answers over 1 KB, gzip-compressed for clients that send `Accept-Encoding: gzip` (SPEC 10).
    Level 1: a Pong frame's JSON shrinks about as much as at level 6, for a fraction of the CPU."""

    async def middleware(request):
        response = await get_response(request)
        if (response.streaming or response.has_header("Content-Encoding") or len(response.content) <= GZIP_MIN_BYTES
                or not _ACCEPTS_GZIP.search(request.META.get("HTTP_ACCEPT_ENCODING", ""))):
            return response
        response.content = gzip.compress(response.content, compresslevel=1, mtime=0)
        response["Content-Encoding"] = "gzip"
        response["Content-Length"] = str(len(response.content))
        patch_vary_headers(response, ("Accept-Encoding",))
        return response

    return middleware
