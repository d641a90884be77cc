"""Prompts: play_env, which sets an agent up to play one env well."""

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS

from gymenv.mcp_server.agent_text import EnvDocs
from gymenv.mcp_server.results import worded
from gymsite.errors import GymsiteError


def add_prompts(server: MCPServer, engine, docs: EnvDocs) -> None:
    @server.prompt(name="play_env", title="Play an env well")
    def play_env(env_id: str | None = None, instance_id: str | None = None) -> str:
        """Sets an agent up to play one of this server's envs: what it is, what to send, how to loop."""
        # MCPError: any other exception reaches the client only as "Internal server error".
        try:
            if env_id is None:
                env_id = engine.get(instance_id).env_id if instance_id else docs.default
        except GymsiteError as err:
            raise MCPError(code=INVALID_PARAMS, message=worded(err)) from None
        if env_id not in docs.entries:
            raise MCPError(code=INVALID_PARAMS,
                           message=f"env_id {env_id[:80]!r} is not allowed here; allowed: {', '.join(docs.entries)}")
        return docs.play_prompt(env_id, instance_id)
