"""The MCP front door (SPEC 6): an `MCPServer` whose tools drive the engine, served at exactly `/mcp`.

Tools hold no logic: check the arguments' shape, call one engine method, send its answer (the REST
body) as structured content plus a JSON text block. No state hangs off an MCP session: the server
runs stateless for handshake-era clients too, and everything lives in the engine's instances,
addressed by `instance_id`, which REST and MCP share.
"""

import functools
import hmac
import json
import logging
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any

import anyio.to_thread
from django.db import close_old_connections
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import FuncMetadata
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, ValidationError, WithJsonSchema
from starlette.types import ASGIApp

from gymsite.errors import GymsiteError, UnknownInstance, describe_validation_errors
from gymenv.schemas import (
    CloseOut,
    DeletedOut,
    EnvInfoOut,
    InstanceListOut,
    InstanceOut,
    RenderOut,
    ResetOut,
    SampleOut,
    StepOut,
)
from runs.schemas import RunResetOut, RunStatisticsOut, RunStatusOut

log = logging.getLogger(__name__)

PATH = "/mcp"
SUMMARY_CHARS = 300  # one env's "what is it" line
DOC_BUDGET_CHARS = 2800  # per section of a tool description, shared by the envs; full docs: get_env_info
SECTION_NAMES = ("description", "action space", "observation space", "rewards", "starting state", "episode end",
                 "episode termination", "arguments", "version history", "information", "notes", "references")

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

DEFAULT_INSTANCE = "default"

# The MCP door's words for what a client can do next (gymsite.errors: remedy): MCP tools, not REST routes.
REMEDIES = {
    "list_instances": "list_envs lists the live ones",
    "list_runs": "get_run_statistics shows the current run; the ledger's history is at GET /runs",
    "reset_run": "reset_run starts a new run",
    "resume_run": "resume it with POST /run/resume or from the dashboard",
    "close_env": "close_env closes its env",
    "delete_instance": "delete_env one you no longer need",
}

# Optional, and null accepted: LLM clients with non-strict tool calling send null for optional arguments.
# The tool body always receives a str: None (sent or defaulted) becomes the default instance.
InstanceId = Annotated[str | None, AfterValidator(lambda v: DEFAULT_INSTANCE if v is None else v), Field(
    validate_default=True,
    description='Which env instance to act on: omit or null for the server\'s default instance ("default"), '
                "or an instance_id returned by create_env.")]


# -- building the server --------------------------------------------------------------------------

def create_mcp_app(*, engine, allowed_hosts: list[str], token: str | None,
                   bench_noop: bool = False) -> tuple[ASGIApp, Callable[[], AbstractAsyncContextManager]]:
    """Returns (the ASGI app serving path `/mcp`, the lifespan that runs its session manager).

    2026-07-28 clients get JSON answers, handshake-era clients an SSE stream (the SDK's defaults).
    `bench_noop` adds the `noop` tool bench/mcp_step.py measures the MCP floor with; never in production.
    """
    auth = {}
    if token:
        # Bearer-only: no OAuth server. AuthSettings insists on an issuer URL; with no
        # auth_server_provider and no resource_server_url nothing ever serves or advertises it.
        auth = {"token_verifier": StaticTokenVerifier(token),
                "auth": AuthSettings(issuer_url="http://127.0.0.1", resource_server_url=None)}
    server = build_server(engine, bench_noop=bench_noop, **auth)
    app = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,  # SPEC 6: nothing is kept per MCP session; legacy clients need none
        transport_security=transport_security(allowed_hosts),
    )
    return app, server.session_manager.run


def build_server(engine, *, bench_noop: bool = False, **auth: Any) -> MCPServer:
    docs = EnvDocs(engine.catalogue(), engine.config.default_env_id, runs=engine.config.run is not None)
    tools = env_tools(engine, docs) + instance_tools(engine, docs) + run_tools(engine)
    if bench_noop:
        tools.append(noop_tool())
    server = MCPServer(
        "gymsite",
        title="gymsite: Gymnasium environments",
        version=_version(),
        instructions=docs.instructions(),
        tools=tools,
        subscriptions=False,  # nothing here emits resource or list-changed events
        **auth,
    )
    add_resources(server, engine, docs)
    add_prompts(server, engine, docs)
    return server


def transport_security(allowed_hosts: list[str]) -> TransportSecuritySettings:
    """DNS-rebinding protection following Django's ALLOWED_HOSTS: a foreign Host gets 421, a foreign Origin 403."""
    hosts = [_bracket_ipv6(h.strip().lower()) for h in allowed_hosts if h.strip()]
    if "*" in hosts:
        # Any Host goes (runserver_gym on a wildcard address): the SDK cannot check Origin alone,
        # so both checks are off and the token, required for such binds, is the guard.
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    # Django's ".example.com" also allows subdomains; the SDK matches exact names only.
    names = list(dict.fromkeys(h.lstrip(".") for h in hosts))
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[form for name in names for form in (name, f"{name}:*")],
        allowed_origins=[f"{scheme}://{form}" for name in names for scheme in ("http", "https")
                         for form in (name, f"{name}:*")],
    )


def _bracket_ipv6(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class StaticTokenVerifier:
    """The SDK's TokenVerifier for the one operator token (`--token` / GYM_API_TOKEN)."""

    def __init__(self, token: str):
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id="gymsite-operator", scopes=[])
        return None


def _version() -> str:
    try:
        return version("gymsite")
    except PackageNotFoundError:
        return "0"


# -- tool plumbing ---------------------------------------------------------------------------------

_REFUSED = "\0refused"  # key of the one "argument" validate_arguments hands call_fn for refused arguments


class _StrictArguments(FuncMetadata):
    """Arguments exactly as sent. The SDK parses JSON found inside strings ("[1, 2]" becomes a list)
    and ignores unknown names; here a string action stays a string (SPEC 5: no coercion) and a
    misspelled `instance_id` is an error rather than a silent step on the default instance.

    Arguments that fail validation are answered like every other tool error (code invalid_argument,
    in the words REST's 422s use) instead of the SDK's pydantic dump: the SDK calls validate_arguments
    and then call_fn with what it returned, so the refusal rides from one to the other.
    """

    tool_name: str

    def pre_parse_json(self, data: dict[str, Any]) -> dict[str, Any]:
        return data

    def validate_arguments(self, arguments_to_validate: dict[str, Any]) -> dict[str, Any]:
        try:
            return super().validate_arguments(arguments_to_validate)
        except ValidationError as exc:
            errors = exc.errors(include_url=False, include_input=False)
            log.info("MCP tool %s refused arguments: %r", self.tool_name, [e["loc"] for e in errors])
            return {_REFUSED: failure(invalid_arguments(self.tool_name, errors), "invalid_argument")}

    async def call_fn(self, fn: Callable, fn_is_async: bool, arguments: dict[str, Any],
                      arguments_to_pass_directly: dict[str, Any] | None = None) -> Any:
        if _REFUSED in arguments:
            return arguments[_REFUSED]
        return await super().call_fn(fn, fn_is_async, arguments, arguments_to_pass_directly)


def invalid_arguments(tool_name: str, errors: list[dict]) -> str:
    """E.g. "invalid arguments for step_env: 'action' is required", worded by REST's formatter. Its locs
    start with where in the request ("body", then the field); an argument's loc starts at its name."""
    detail = describe_validation_errors([{**e, "loc": ("arguments", *e["loc"])} for e in errors])
    return f"invalid arguments for {tool_name}: {detail.removeprefix('invalid request: ')}"


def make_tool(fn: Callable, *, description: str, annotations: ToolAnnotations) -> Tool:
    """A Tool for `fn`: failures answered (`guarded`), arguments taken strictly, output schema from its annotation."""
    tool = Tool.from_function(guarded(fn), description=description, annotations=annotations)
    meta = tool.fn_metadata
    strict = type(meta.arg_model.__name__, (meta.arg_model,), {"model_config": ConfigDict(extra="forbid")})
    tool.fn_metadata = _StrictArguments(arg_model=strict, output_model=meta.output_model, tool_name=tool.name)
    tool.parameters = strict.model_json_schema(by_alias=True)
    return tool


def guarded(fn: Callable) -> Callable:
    """Every failure becomes an `isError` result carrying the REST error body; none is silent."""

    @functools.wraps(fn)
    async def tool(**kwargs: Any) -> CallToolResult:
        try:
            return await fn(**kwargs)
        except GymsiteError as err:
            return failure(err.worded(REMEDIES), err.code)
        except Exception as exc:  # noqa: BLE001 - a crash must still answer the agent clearly
            log.exception("MCP tool %s crashed", fn.__name__)
            return failure(f"{fn.__name__} failed on the server ({type(exc).__name__}); "
                           "this is a server bug, its log has the details", "internal_error")

    return tool


def success(answer: BaseModel, content: list | None = None) -> CallToolResult:
    body = answer.model_dump(mode="json")
    if content is None:
        # The body again as text, for clients that read only content (MCP's advice for structured results).
        content = [TextContent(type="text", text=json.dumps(body, separators=(",", ":")))]
    return CallToolResult(content=content, structured_content=body)


def failure(message: str, code: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=f"{message} (code: {code})")],
        structured_content={"success": False, "error": message, "code": code},
        is_error=True,
    )


def returns(model: type[BaseModel]) -> Any:
    """Return annotation: the tool builds its own CallToolResult; the SDK publishes and checks `model`."""
    return Annotated[CallToolResult, model]


# -- tools -----------------------------------------------------------------------------------------

def env_tools(engine, docs: "EnvDocs") -> list[Tool]:
    Action = Annotated[Any, WithJsonSchema(docs.action_schema()), Field(
        description="An action for the instance's env, as JSON: an integer, a number, an array or an object "
                    "as its action space needs (get_env_info gives the exact action_schema).")]
    Seed = Annotated[Any, WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}]}), Field(
        description="Seed for the env's random generator: the same seed replays the same episode.")]
    Options = Annotated[dict[str, Any] | None, Field(description="Env-specific reset options (rarely needed).")]
    Mode = Annotated[str | None, Field(description="Render mode; only the instance's own (see get_env_info).")]

    async def reset_env(seed: Seed = None, options: Options = None,
                        instance_id: InstanceId = None) -> returns(ResetOut):
        return success(await engine.reset(instance_id, seed=seed, options=options))

    async def step_env(action: Action, instance_id: InstanceId = None) -> returns(StepOut):
        return success(await engine.step(instance_id, action))

    async def render_env(mode: Mode = None, instance_id: InstanceId = None) -> returns(RenderOut):
        frame = await engine.render(instance_id, mode=mode)
        if frame.type == "image_base64":
            about = frame.model_dump_json(exclude={"render"})
            image = ImageContent(type="image", data=frame.render, mime_type=f"image/{frame.format}")
            return success(frame, [image, TextContent(type="text", text=about)])
        return success(frame, [TextContent(type="text", text=frame.render)])

    async def close_env(instance_id: InstanceId = None) -> returns(CloseOut):
        return success(await engine.close(instance_id))

    async def get_env_info(instance_id: InstanceId = None) -> returns(EnvInfoOut):
        return success(await engine.info(instance_id))

    async def sample_action(instance_id: InstanceId = None) -> returns(SampleOut):
        return success(await engine.sample(instance_id))

    return [
        make_tool(reset_env, annotations=DESTRUCTIVE, description=(
            "Start a new episode on an env instance and return its first observation (plus info, done: false "
            "and run_progress). Call it before the first step_env and again whenever a step answers done: true. "
            "A reset before the episode ended abandons it.\n\n" + docs.observations())),
        make_tool(step_env, annotations=WRITE, description=(
            "Apply one action to an env instance. Returns the next observation, the reward for this step, "
            "terminated (the episode reached an end state), truncated (it hit a time or step limit), "
            "done (either: call reset_env next; stepping again is an error), info and run_progress.\n\n"
            + docs.actions())),
        make_tool(render_env, annotations=READ, description=(
            "Look at an env instance's current frame: a PNG image for rgb_array instances, text for ansi "
            "ones. Call after reset_env. The structured result carries mode, type, format, shape and the "
            "base64 render.")),
        make_tool(close_env, annotations=DESTRUCTIVE, description=(
            "Close an env instance's env, freeing its resources; a later reset_env re-creates it. "
            "The instance stays listed and keeps its run history.")),
        make_tool(get_env_info, annotations=READ, description=(
            "Describe an env instance: what the env is and how to win (its own docs), the observation and "
            "action spaces, action_schema (a JSON Schema exactly the valid actions satisfy), the step limit, "
            "the return that counts as solved and the render mode. Read it before playing.\n\n"
            + docs.summaries())),
        make_tool(sample_action, annotations=READ, description=(
            "A random valid action for an env instance: an example of the action format, or a baseline.")),
    ]


def instance_tools(engine, docs: "EnvDocs") -> list[Tool]:
    EnvId = Annotated[str | None, WithJsonSchema({"anyOf": [{"type": "string", "enum": list(docs.entries)},
                                                             {"type": "null"}]}), Field(
        description=f"An env this server allows; {docs.default!r} when absent.")]
    EnvKwargs = Annotated[dict[str, Any] | None, Field(
        description="Keyword arguments for gymnasium.make; refused unless the operator allows them.")]
    RenderMode = Annotated[str | None, Field(description="rgb_array or ansi; the env's best mode when absent.")]
    NumEpisodes = Annotated[StrictInt | None, Field(ge=1, le=1_000_000, description="Episodes in this instance's run.")]
    MaxSteps = Annotated[StrictInt | None, Field(ge=1, le=100_000_000, description="Step limit per episode.")]

    async def create_env(env_id: EnvId = None, env_kwargs: EnvKwargs = None, render_mode: RenderMode = None,
                         num_episodes: NumEpisodes = None,
                         max_steps_per_episode: MaxSteps = None) -> returns(InstanceOut):
        return success(await engine.create(env_id=env_id, env_kwargs=env_kwargs, render_mode=render_mode,
                                           num_episodes=num_episodes, max_steps_per_episode=max_steps_per_episode))

    async def list_envs() -> returns(InstanceListOut):
        return success(engine.list())

    Created = Annotated[str, Field(description="An instance_id from create_env.")]

    async def delete_env(instance_id: Created) -> returns(DeletedOut):
        return success(await engine.delete(instance_id))

    return [
        make_tool(create_env, annotations=WRITE, description=(
            "Open a new env instance of your own, so your episodes never mix with another agent's; pass its "
            "instance_id to every other tool. Its run (with the run manager on) has num_episodes episodes of "
            "at most max_steps_per_episode steps.\n\nEnvs this server allows:\n" + docs.summaries())),
        make_tool(list_envs, annotations=READ, description=(
            "List the live env instances: instance_id, env_id, render mode, whether each needs a reset or "
            "has its episode over, and its current run_id.")),
        make_tool(delete_env, annotations=DESTRUCTIVE, description=(
            "Close and forget an instance you created, when you are done with it (the default instance "
            "cannot be deleted). Its runs stay in the ledger.")),
    ]


def run_tools(engine) -> list[Tool]:
    manager = engine.run_manager

    async def get_run_status(instance_id: InstanceId = None) -> returns(RunStatusOut):
        return success(await off_loop(manager(instance_id).status))

    async def get_run_statistics(instance_id: InstanceId = None) -> returns(RunStatisticsOut):
        return success(await off_loop(manager(instance_id).statistics))

    async def reset_run(instance_id: InstanceId = None) -> returns(RunResetOut):
        return success(await off_loop(manager(instance_id).reset))

    return [
        make_tool(get_run_status, annotations=READ, description=(
            "Progress of an instance's current run (a run is a fixed number of episodes): state (idle, "
            "running, paused, completed, error), current episode and step, and episodes ended out of the total.")),
        make_tool(get_run_statistics, annotations=READ, description=(
            "Statistics of an instance's current run, from the ledger: total and average reward and steps, "
            "success rate, and a summary of every episode (return, length, success).")),
        make_tool(reset_run, annotations=DESTRUCTIVE, description=(
            "End an instance's current run and start a new one with a fresh episode count. Needed once a run "
            "is completed (reset_env then answers run_completed); the old run stays in the ledger.")),
    ]


async def off_loop(fn: Callable[[], dict]) -> dict:
    """Runs a sync run-manager call (it may touch the ORM) in a worker thread, never on the event loop;
    like a Django request it leaves no expired DB connection behind in that thread."""

    def call() -> dict:
        try:
            return fn()
        finally:
            close_old_connections()

    return await anyio.to_thread.run_sync(call)


class NoopOut(BaseModel):
    success: bool = True


def noop_tool() -> Tool:
    async def noop() -> returns(NoopOut):
        return success(NoopOut())

    return make_tool(noop, annotations=READ,
                     description="Does nothing (benchmark only): the cost of an MCP tool call itself.")


# -- resources and prompts ---------------------------------------------------------------------------

def add_resources(server: MCPServer, engine, docs: "EnvDocs") -> None:
    @server.resource("gym://envs", name="env-catalogue", title="Envs this server allows",
                     description="Every env id clients may open, with its spaces, action schema, limits and docs.",
                     mime_type="application/json")
    def catalogue() -> str:
        return json.dumps(list(docs.entries.values()), indent=1)

    for env_id, entry in docs.entries.items():
        server.resource(f"gym://envs/{env_id}", name=f"env-{env_id}", title=f"{env_id}: spaces and docs",
                        description=docs.summary(env_id), mime_type="application/json")(
            constant(json.dumps(entry, indent=1)))

    @server.resource("gym://instances", name="instances", title="Live env instances",
                     description="The live instances, as list_envs gives them.", mime_type="application/json")
    def instances() -> str:
        return engine.list().model_dump_json(indent=1)

    @server.resource("gym://instances/{instance_id}", name="instance", title="One live instance",
                     description="An instance's env info, as get_env_info gives it.", mime_type="application/json")
    async def instance(instance_id: str) -> str:
        try:
            return (await engine.info(instance_id)).model_dump_json(indent=1)
        except UnknownInstance as err:
            raise ResourceNotFoundError(err.message) from None
        except GymsiteError as err:
            raise ResourceError(err.message) from None


def constant(text: str) -> Callable[[], str]:
    def read() -> str:
        return text

    return read


def add_prompts(server: MCPServer, engine, docs: "EnvDocs") -> None:
    @server.prompt(name="play_env", title="Play an env well")
    def play_env(env_id: str | None = None, instance_id: str | None = None) -> str:
        """Sets an agent up to play one of this server's envs: what it is, what to send, how to loop."""
        # MCPError: any other exception reaches the client only as "Internal server error".
        try:
            if env_id is None:
                env_id = engine.get(instance_id).env_id if instance_id else docs.default
        except GymsiteError as err:
            raise MCPError(code=INVALID_PARAMS, message=err.message) from None
        if env_id not in docs.entries:
            raise MCPError(code=INVALID_PARAMS,
                           message=f"env_id {env_id[:80]!r} is not allowed here; allowed: {', '.join(docs.entries)}")
        return docs.play_prompt(env_id, instance_id)


# -- agent-facing text, built once from the allowed envs ---------------------------------------------

class EnvDocs:
    """Descriptions of the allowed envs, cut from their own docs, for tool descriptions and prompts."""

    def __init__(self, entries: dict[str, dict], default: str, runs: bool):
        self.entries = entries
        self.default = default
        self.runs = runs
        self.budget = max(200, DOC_BUDGET_CHARS // len(entries))  # per env: many envs, shorter excerpts

    def action_schema(self) -> dict:
        schemas = list({json.dumps(e["action_schema"], sort_keys=True): e["action_schema"]
                        for e in self.entries.values()}.values())
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}

    def summary(self, env_id: str) -> str:
        entry = self.entries[env_id]
        text = section(entry["description"], "description") or entry["description"]
        return f"{env_id}: {excerpt(text, SUMMARY_CHARS)}"

    def summaries(self) -> str:
        return "\n".join(f"- {self.summary(env_id)}" for env_id in self.entries)

    def actions(self) -> str:
        return "Actions, per env:\n" + "\n".join(
            self._space(env_id, "action_space", "action space", f"schema {json.dumps(e['action_schema'])}")
            for env_id, e in self.entries.items())

    def observations(self) -> str:
        return "Observations, per env:\n" + "\n".join(
            self._space(env_id, "observation_space", "observation space") for env_id in self.entries)

    def _space(self, env_id: str, key: str, name: str, *extra: str) -> str:
        e = self.entries[env_id]
        about = "; ".join([e[key].get("repr") or e[key].get("type", "?"), *extra])
        return f"- {env_id} ({about}): {excerpt(section(e['description'], name), self.budget)}"

    def instructions(self) -> str:
        return (
            "gymsite serves Gymnasium reinforcement-learning environments. The instance \"default\" runs "
            f"{self.default} and is shared with REST clients; call create_env to get an instance of your own and "
            "pass its instance_id to every tool. Loop: get_env_info, reset_env, then step_env with an action "
            "until the answer says done: true, then reset_env again. render_env shows the current frame. "
            + ("Every step is recorded in a run of several episodes (get_run_status, get_run_statistics). "
               if self.runs else "")
            + "Errors come back as tool errors saying what was wrong and what is expected.\n\nEnvs:\n"
            + self.summaries()
        )

    def play_prompt(self, env_id: str, instance_id: str | None) -> str:
        e = self.entries[env_id]
        if instance_id:
            where = f'Use the instance "{instance_id}": pass instance_id="{instance_id}" to every tool.'
        else:
            where = (f'First call create_env(env_id="{env_id}") to get an instance of your own, and pass its '
                     "instance_id to every tool.")
        goal = (f"An episode return of {e['reward_threshold']} or more counts as solved."
                if e.get("reward_threshold") is not None else "Aim for the highest episode return.")
        limit = (f" Episodes end after at most {e['max_episode_steps']} steps."
                 if e.get("max_episode_steps") else "")
        return (
            f"You are playing the Gymnasium environment {env_id} through this server's MCP tools. {where}\n\n"
            f"About the env (its own docs):\n{e['description']}\n\n"
            f"Actions must match this JSON Schema: {json.dumps(e['action_schema'])} "
            f"(action space {e['action_space'].get('repr', '')}).\n"
            f"{goal}{limit}\n\n"
            "How to play:\n"
            "1. Call reset_env (a seed makes the episode repeatable) and read the observation.\n"
            "2. Work out what each part of the observation means using the docs above, choose the action that "
            "moves you toward the goal, and call step_env with it. Keep a short note of your reasoning.\n"
            "3. Read the reward and the new observation; repeat until done is true, then reset_env for the next "
            "episode.\n"
            "4. Use render_env to look at the frame when the numbers are unclear, and get_run_status or "
            "get_run_statistics to see how the run is going.\n"
            "If a call fails, the error says what was expected: fix the call rather than retrying it unchanged."
        )


def section(text: str, name: str) -> str:
    """One section ("Action Space", ...) of gymnasium's env docs, with or without its markdown heading."""
    heading = re.compile(r"^\s*(?:#+\s*)?(" + "|".join(SECTION_NAMES) + r")\s*:?\s*$", re.IGNORECASE | re.MULTILINE)
    found = [(m.group(1).lower(), m.start(), m.end()) for m in heading.finditer(text)]
    for i, (title, _, end) in enumerate(found):
        if title == name:
            stop = found[i + 1][1] if i + 1 < len(found) else len(text)
            return text[end:stop].strip()
    return ""


def excerpt(text: str, limit: int) -> str:
    text = re.sub(r"[ \t]*\n[ \t]*", "\n", text.strip())
    if not text:
        return "see get_env_info for the env's docs."
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."
