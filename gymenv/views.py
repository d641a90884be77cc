"""Browser pages: the home page that says what this server serves."""

from django.shortcuts import render

from gymenv.engine import get_engine
from gymsite.responses import error_response


def home(request):
    engine = get_engine()
    base = request.build_absolute_uri("/").rstrip("/")
    return render(request, "gymenv/home.html", {
        "engine": engine,
        "instances": engine.list()["instances"],
        "mcp_url": f"{base}/mcp",
        "base_url": base,
    })


def not_found(request, exception=None):
    return error_response(f"no route {request.path[:100]!r}; see /docs for the API", "not_found", 404)
