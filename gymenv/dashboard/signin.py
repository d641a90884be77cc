"""Signing a browser in with the server's token (a cookie), and out again."""

from __future__ import annotations

import hmac

from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from gymenv.middleware import SIGN_IN_PATH, TOKEN_COOKIE, set_token_cookie


def sign_in_page(request, *, status: int = 200, wrong: bool = False) -> HttpResponse:
    """The small form a browser without the token gets, wherever it went (it comes back there)."""
    next_path = request.get_full_path() if request.path != SIGN_IN_PATH else request.GET.get("next", "/")
    html = render_to_string("gymenv/dashboard/sign_in.html", {"next": _local(next_path), "wrong": wrong})
    return HttpResponse(html, status=status, content_type="text/html; charset=utf-8")


# Exempt from CSRF: the form is served by the token check before Django's CSRF middleware runs, so it
# cannot carry a CSRF token; and a forged sign-in can only sign a browser in with a token the forger
# already has. The cookie it sets is HttpOnly.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def sign_in(request):
    token = request.server.token
    if request.method == "GET" or not token:
        return sign_in_page(request) if token else HttpResponseRedirect("/")
    given = request.POST.get("token", "")
    if not hmac.compare_digest(given.encode(), token.encode()):
        return sign_in_page(request, status=401, wrong=True)
    response = HttpResponseRedirect(_local(request.POST.get("next", "/")))
    set_token_cookie(response, token)
    return response


@require_POST
def sign_out(request):
    response = HttpResponseRedirect(SIGN_IN_PATH)
    response.delete_cookie(TOKEN_COOKIE, samesite="Lax")
    return response


def _local(path: str) -> str:
    """Only a path on this server (never //other.host or a scheme), and never one carrying the token."""
    if not path.startswith("/") or path.startswith("//") or "token=" in path:
        return "/"
    return path

