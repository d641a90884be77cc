"""The episode viewer as an MCP App: a `ui://` page hosts render beside render_env and the run tools.

Hosts that support MCP Apps fetch the page (served as `text/html;profile=mcp-app`) and show each
linked tool's result in it: the frame, the run's state and its return-per-episode chart, refreshed
through the host. The tools' results are unchanged, so hosts without MCP Apps show what they did.
The page is self-contained (the dashboard's chart script inlined): an app's iframe loads nothing else.
"""

from functools import cache
from pathlib import Path

from mcp.server.apps import Apps
from mcp.server.mcpserver.tools import Tool

VIEWER_URI = "ui://gymsite/episode-viewer.html"
LINKED_TOOLS = ("render_env", "get_run_status", "get_run_statistics", "reset_run")
STATIC = Path(__file__).resolve().parent.parent / "static" / "gymsite"


def viewer_app() -> Apps:
    apps = Apps()
    apps.add_html_resource(VIEWER_URI, viewer_html(), name="episode-viewer", title="Episode viewer",
                           description="The instance's latest frame and its run's return per episode.")
    return apps


def link_viewer(tools: list[Tool]) -> list[Tool]:
    """The tools, those that show a frame or a run linked to the viewer (`_meta.ui.resourceUri`)."""
    for tool in tools:
        if tool.name in LINKED_TOOLS:
            tool.meta = {**(tool.meta or {}), "ui": {"resourceUri": VIEWER_URI}}
    return tools


@cache
def viewer_html() -> str:
    page = (STATIC / "mcp-viewer.html").read_text(encoding="utf-8")
    return page.replace("/*CHART_JS*/", (STATIC / "chart.js").read_text(encoding="utf-8"))
