"""What a tool answers: an engine answer as structured content plus JSON text, or a failure in MCP's words."""

import json

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

from gymsite.errors import GymsiteError

# What an agent can do next, for each error's `remedy`, named by MCP tools (REST names its routes).
MCP_REMEDIES = {
    "list_instances": "list_envs lists the live ones",
    "list_runs": "get_run_status gives an instance's current run",
    "reset_run": "reset_run starts a new run",
    "resume_run": "it goes on once the operator resumes it, or reset_run starts a new run",
    "close_env": "close_env closes its env",
    "delete_instance": "delete_env one you no longer need",
}


def worded(err: GymsiteError) -> str:
    """A domain error's message, its remedy (if any) in MCP's words."""
    return err.worded(MCP_REMEDIES)


def success(answer: BaseModel, content: list | None = None) -> CallToolResult:
    """The one place an engine answer becomes a tool result."""
    body = answer.model_dump(mode="json")
    if content is None:
        # The body again as text, for clients that read only content (MCP's advice for structured results).
        content = [TextContent(type="text", text=json.dumps(body, separators=(",", ":")))]
    return CallToolResult(content=content, structured_content=body)


def failure(err: GymsiteError) -> CallToolResult:
    """A domain error as an isError result: REST's error body, the text saying the same on one line."""
    message = worded(err)
    return CallToolResult(
        content=[TextContent(type="text", text=f"{message} (code: {err.code})")],
        structured_content={"success": False, "error": message, "code": err.code},
        is_error=True,
    )
