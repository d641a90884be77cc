"""What a tool answers: an engine answer as structured content plus JSON text, or a failure in MCP's words."""

import json

import orjson
from mcp.types import CallToolResult, ImageContent, TextContent
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


# Text content longer than this is replaced by a summary: the structured content carries it already.
TEXT_LIMIT = 1500
IN_IMAGE_CONTENT = "in the image content"


def worded(err: GymsiteError) -> str:
    """A domain error's message, its remedy (if any) in MCP's words."""
    return err.worded(MCP_REMEDIES)


def success(answer: BaseModel, content: list | None = None) -> CallToolResult:
    """The one place an engine answer becomes a tool result."""
    body = answer.model_dump(mode="json")
    if content is None:
        # The body again as text, for clients that read only content (MCP's advice for structured results).
        content = [TextContent(type="text", text=orjson.dumps(body).decode())]
    return CallToolResult(content=content, structured_content=body)


def observed(answer: BaseModel) -> CallToolResult:
    """A reset or step answer: an image observation goes once, as PNG image content (its place in the
    structured content keeps shape and dtype); the text is the answer as JSON when short, else a
    summary, so no large payload travels twice."""
    body = answer.model_dump(mode="json")
    obs = body.get("observation")
    content: list = []
    if isinstance(obs, dict) and obs.get("encoding") == "png":
        content.append(ImageContent(type="image", data=obs["data"], mime_type="image/png"))
        body["observation"] = {**{k: v for k, v in obs.items() if k != "data"}, "data": IN_IMAGE_CONTENT}
    text = orjson.dumps(body).decode()  # compact, as json.dumps with (",", ":") writes it, in a tenth of the time
    content.append(TextContent(type="text", text=text if len(text) <= TEXT_LIMIT else summary(body)))
    return CallToolResult(content=content, structured_content=body)


def summary(body: dict) -> str:
    """A short account of a reset or step answer for clients that read text only."""
    parts = [f"{name} {json.dumps(body[name])}" for name in ("steps", "reward", "terminated", "truncated", "done")
             if name in body]
    obs = body.get("observation")
    if isinstance(obs, dict) and "encoding" in obs:
        where = "the image content" if obs["data"] == IN_IMAGE_CONTENT else "the structured content"
        parts.append(f"observation: {'x'.join(map(str, obs['shape']))} {obs['dtype']} as {obs['encoding']} "
                     f"(in {where})")
    else:
        parts.append("observation: in the structured content")
    if body.get("run_progress"):
        parts.append("run_progress " + json.dumps(body["run_progress"], separators=(",", ":")))
    return "; ".join(parts)


def failure(err: GymsiteError) -> CallToolResult:
    """A domain error as an isError result: REST's error body, the text saying the same on one line."""
    message = worded(err)
    return CallToolResult(
        content=[TextContent(type="text", text=f"{message} (code: {err.code})")],
        structured_content={"success": False, "error": message, "code": err.code},
        is_error=True,
    )
