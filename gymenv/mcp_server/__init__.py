"""The MCP front door (SPEC 6): an `MCPServer` whose tools drive the engine, served at exactly `/mcp`.

Tools hold no logic: check the arguments' shape, call one engine method, send its answer (the REST
body) as structured content plus a JSON text block. No state hangs off an MCP session: the server
runs stateless for handshake-era clients too, and everything lives in the engine's instances,
addressed by `instance_id`, which REST and MCP share.
"""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.applications import Starlette
from starlette.types import ASGIApp

from gymenv.mcp_server.agent_text import EnvDocs
from gymenv.mcp_server.prompts import add_prompts
from gymenv.mcp_server.resources import add_resources
from gymenv.mcp_server.security import bearer_auth, transport_security
from gymenv.mcp_server.tools import all_tools
from gymenv.mcp_server.viewer import link_viewer, viewer_app

__all__ = ["PATH", "build_server", "create_mcp_app", "http_app"]

PATH = "/mcp"


def create_mcp_app(*, engine, allowed_hosts: list[str],
                   token: str | None) -> tuple[ASGIApp, Callable[[], AbstractAsyncContextManager]]:
    """Returns (the ASGI app serving path `/mcp`, the lifespan that runs its session manager).

    Both eras get each tool call's answer as one JSON body, not an SSE stream: the streamable HTTP
    transport lets a server answer a POST either way, and the tools send no notifications or
    requests mid-call that would need a stream.
    """
    server = build_server(engine, **bearer_auth(token))
    return http_app(server, allowed_hosts), server.session_manager.run


def http_app(server: MCPServer, allowed_hosts: list[str]) -> Starlette:
    """`server` over streamable HTTP at `/mcp`; as an app of its own, its lifespan runs the session manager."""
    return server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,  # SPEC 6: nothing is kept per MCP session; legacy clients need none
        json_response=True,
        transport_security=transport_security(allowed_hosts),
    )


def build_server(engine, **auth: Any) -> MCPServer:
    """The MCP server for `engine`: its tools, resources and prompts; `auth` as `bearer_auth` gives it."""
    docs = EnvDocs(engine.catalogue(), engine.config.default_env_id, runs=engine.config.run is not None)
    server = MCPServer(
        "gymsite",
        title="gymsite: Gymnasium environments",
        version=_version(),
        instructions=docs.instructions(),
        tools=link_viewer(all_tools(engine, docs)),
        extensions=[viewer_app()],  # MCP Apps: the episode viewer (viewer.py)
        subscriptions=False,  # nothing here emits resource or list-changed events
        **auth,
    )
    add_resources(server, engine, docs)
    add_prompts(server, engine, docs)
    return server


def _version() -> str:
    try:
        return version("gymsite")
    except PackageNotFoundError:
        return "0"
