"""The twelve tools: each checks its arguments, calls one engine or run-manager method and sends the answer."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, TypeVar, cast

import anyio.to_thread
from django.db import close_old_connections
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from pydantic import ConfigDict, Field, RootModel, StrictInt, ValidationError, WithJsonSchema

from gymenv.mcp_server.agent_text import EnvDocs
from gymenv.mcp_server.arguments import InstanceId, forbidding_unknown, refusal
from gymenv.mcp_server.output_schemas import client_schema
from gymenv.mcp_server.results import failure, observed, success
from gymenv.schemas import (
    EXPECTED_EPISODE,
    EXPECTED_STEP,
    FORK_FROM,
    OBS_FORMAT,
    RESUME_RUN,
    SEED_SCHEMA,
    BatchStepOut,
    CloseOut,
    DeletedOut,
    EnvInfoOut,
    InstanceListOut,
    InstanceOut,
    ObsFormat,
    RenderOut,
    ResetOut,
    SampleOut,
    StepOut,
    VectorResetOut,
    VectorStepOut,
)
from gymenv.schemas import ForkFrom as ForkPoint
from gymsite.errors import GymsiteError, InvalidArgument
from runs.schemas import RunResetOut, RunStatisticsOut, RunStatusOut

log = logging.getLogger(__name__)

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
DESTRUCTIVE = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=False)

# Each tool answers `Annotated[CallToolResult, Model]`: it builds its own CallToolResult (success/failure),
# and the SDK publishes and checks `Model` as the output schema.

T = TypeVar("T")


# step_env's action when none is sent (null is an action, which the space refuses): a default the
# schema does not show.
_ABSENT = object()
NO_ACTION = Field(default_factory=lambda: _ABSENT)


class StepEnvOut(RootModel[StepOut | BatchStepOut | VectorStepOut]):
    """step_env's answer: one step, a batch, or a vector instance's step. A model (the SDK would wrap a
    bare union in {"result": ...}) whose schema says it is an object, as MCP's outputSchema must be."""

    model_config = ConfigDict(json_schema_extra={"type": "object"})


class ResetEnvOut(RootModel[ResetOut | VectorResetOut]):
    """reset_env's answer: a single instance's or a vector instance's."""

    model_config = ConfigDict(json_schema_extra={"type": "object"})


def all_tools(engine, docs: EnvDocs) -> list[Tool]:
    return env_tools(engine, docs) + instance_tools(engine, docs) + run_tools(engine)


class GymTool(Tool):
    """A tool that takes its arguments exactly as sent and answers every failure as a result.

    Overrides `Tool.run` (mcp 2.3, tools/base.py:132-213), the one place the SDK handles arguments,
    because no setting changes what it does with them:
    - base.py:152 validates through FuncMetadata.validate_arguments, which (func_metadata.py:145)
      first runs pre_parse_json: any string sent for a non-`str` parameter that parses as a JSON array
      or object is replaced by it (func_metadata.py:254-266), so the action "[-1.0]" would step Pendulum
      with [-1.0]. SPEC 5: a string action stays a string.
    - base.py:153-156 turns a refusal into ToolError(str(ValidationError)), which server.py:446-456 sends
      as the tool error's text: pydantic's multi-line dump, where REST gives one line and a code.
    The body is base.py's own minus those two: validate, call, convert_result (which publishes and checks
    the output model, and passes isError results through). Context injection and Resolve(...) parameters,
    which base.py also handles, are not used by these tools; a tool with a Context parameter gets the
    request's context, as base.py:165-166 passes it (step_env reports a long batch's progress through it).
    """

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            kwargs = self.fn_metadata.arg_model.model_validate(arguments).model_dump_one_level()
        except ValidationError as exc:
            return failure(refusal(self.name, exc))
        if self.context_kwarg is not None:
            kwargs[self.context_kwarg] = context
        try:
            result = await self.fn(**kwargs)
            return self.fn_metadata.convert_result(result) if convert_result else result
        except GymsiteError as err:
            return failure(err)
        except Exception as exc:
            log.exception("MCP tool %s crashed", self.name)
            return failure(GymsiteError(f"{self.name} failed on the server ({type(exc).__name__}); "
                                        "this is a server bug, its log has the details", code="internal_error"))


def make_tool(fn: Callable, *, description: str, annotations: ToolAnnotations) -> GymTool:
    """A GymTool for `fn`, its input schema refusing unknown names, its output schema from its annotation."""
    # from_function builds `cls(...)` but is annotated as returning the base Tool.
    tool = cast(GymTool, GymTool.from_function(fn, description=description, annotations=annotations))
    # FuncMetadata reads its fields on each call: reassigning them is supported (func_metadata.py:115-119).
    tool.fn_metadata.arg_model = forbidding_unknown(tool.fn_metadata.arg_model)
    tool.parameters = tool.fn_metadata.arg_model.model_json_schema(by_alias=True)
    # Published lean, in draft-07 (output_schemas.py); results are still checked against the model.
    if tool.fn_metadata.output_schema is not None:
        tool.fn_metadata.output_schema = client_schema(tool.fn_metadata.output_schema)
    return tool


Format = Annotated[ObsFormat | None, Field(description=OBS_FORMAT)]
ExpectedEpisode = Annotated[StrictInt | None, Field(ge=1, description=EXPECTED_EPISODE)]
ExpectedStep = Annotated[StrictInt | None, Field(ge=1, description=EXPECTED_STEP)]


def env_tools(engine, docs: EnvDocs) -> list[Tool]:
    Action = Annotated[Any, WithJsonSchema(docs.action_schema()), Field(
        description="An action for the instance's env, as JSON: an integer, a number, an array or an object "
                    "as its action space needs (get_env_info gives the exact action_schema).")]
    Seed = Annotated[Any, WithJsonSchema(SEED_SCHEMA), Field(
        description="Seed for the env's random generator: the same seed replays the same episode.")]
    Options = Annotated[dict[str, Any] | None, Field(description="Env-specific reset options (rarely needed).")]
    Mode = Annotated[str | None, Field(description="Render mode; only the instance's own (see get_env_info).")]

    Actions = Annotated[list[Any] | None, Field(
        min_length=1, description="Instead of action, a batch: actions taken in order until the list or the "
                                  "episode ends, all checked before the first; the answer has one entry per "
                                  "step in observations, rewards, terminated, truncated and infos.")]
    Return = Annotated[Literal["all", "last"], Field(
        description="For a batch: last keeps only the last step's observation and info (rewards stay complete).")]

    async def reset_env(seed: Seed = None, options: Options = None, obs_format: Format = None,
                        expected_episode: ExpectedEpisode = None,
                        instance_id: InstanceId = None) -> Annotated[CallToolResult, ResetEnvOut]:
        return observed(await engine.reset(instance_id, seed=seed, options=options, obs_format=obs_format,
                                           expected_episode=expected_episode))

    async def step_env(ctx: Context, action: Action = NO_ACTION, actions: Actions = None,
                       batch_return: Return = "all", obs_format: Format = None, expected_step: ExpectedStep = None,
                       instance_id: InstanceId = None) -> Annotated[CallToolResult, StepEnvOut]:
        given = action is not _ABSENT
        if given and actions is not None:
            raise InvalidArgument("invalid arguments for step_env: send either action (one step) or actions "
                                  "(a batch), not both")
        if not given and actions is None:
            raise InvalidArgument("invalid arguments for step_env: 'action' is required (or 'actions', a batch)")
        if actions is not None:
            return observed(await with_progress(ctx, lambda report: engine.step_batch(
                instance_id, actions, obs_format=obs_format, last_only=batch_return == "last", progress=report,
                expected_step=expected_step)))
        return observed(await engine.step(instance_id, action, obs_format=obs_format, expected_step=expected_step))

    async def render_env(mode: Mode = None, instance_id: InstanceId = None) -> Annotated[CallToolResult, RenderOut]:
        frame = await engine.render(instance_id, mode=mode)
        if frame.type == "image_base64":
            image = ImageContent(type="image", data=frame.render, mime_type=f"image/{frame.format}")
            return success(frame, [image, TextContent(type="text", text=frame.model_dump_json(exclude={"render"}))])
        return success(frame, [TextContent(type="text", text=frame.render)])

    async def close_env(instance_id: InstanceId = None) -> Annotated[CallToolResult, CloseOut]:
        return success(await engine.close(instance_id))

    async def get_env_info(instance_id: InstanceId = None) -> Annotated[CallToolResult, EnvInfoOut]:
        return success(await engine.info(instance_id))

    async def sample_action(instance_id: InstanceId = None) -> Annotated[CallToolResult, SampleOut]:
        return success(await engine.sample(instance_id))

    return [
        make_tool(reset_env, annotations=DESTRUCTIVE, description=(
            "Start a new episode on an env instance and return its first observation (plus info, done: false "
            "and run_progress). Call it before the first step_env and again whenever a step answers done: true. "
            "A reset before the episode ended abandons it.\n\n" + docs.observations())),
        make_tool(step_env, annotations=WRITE, description=(
            "Apply one action to an env instance. Returns the next observation, the reward for this step, "
            "terminated (the episode reached an end state), truncated (it hit a time or step limit), "
            "done (either: call reset_env next; stepping again is an error), info and run_progress. With "
            "actions instead of action, a batch: the answer lists every step taken (progress is reported on "
            "long batches). A vector instance's action is a list of one action per sub-env.\n\n"
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


def instance_tools(engine, docs: EnvDocs) -> list[Tool]:
    EnvId = Annotated[str | None, WithJsonSchema({"anyOf": [{"type": "string", "enum": list(docs.entries)},
                                                             {"type": "null"}]}), Field(
        description=f"An env this server allows; {docs.default!r} when absent.")]
    EnvKwargs = Annotated[dict[str, Any] | None, Field(
        description="Keyword arguments for gymnasium.make; refused unless the operator allows them.")]
    RenderMode = Annotated[str | None, Field(description="rgb_array or ansi; the env's best mode when absent.")]
    NumEpisodes = Annotated[StrictInt | None, Field(ge=0, le=1_000_000,
                                                     description="Episodes in this instance's run; 0: no limit.")]
    MaxSteps = Annotated[StrictInt | None, Field(ge=1, le=100_000_000, description="Step limit per episode.")]
    NumEnvs = Annotated[StrictInt | None, Field(description=(
        "Open a vector instance of this many sub-envs (2 to the server's limit), stepped together: its "
        "actions and answers are lists of num_envs."))]
    VectorizationMode = Annotated[Literal["sync", "async"] | None, Field(
        description="With num_envs: sync (the default) or async (a process per sub-env).")]
    AutoresetModeArg = Annotated[Literal["next_step", "same_step", "disabled"] | None, Field(
        description="With num_envs: when an ended sub-env resets (next_step by default, as gymnasium).")]
    ResumeRun = Annotated[str | None, Field(min_length=1, max_length=80, description=RESUME_RUN)]
    ForkFrom = Annotated[ForkPoint | None, Field(description=FORK_FROM)]

    async def create_env(env_id: EnvId = None, env_kwargs: EnvKwargs = None, render_mode: RenderMode = None,
                         num_episodes: NumEpisodes = None, max_steps_per_episode: MaxSteps = None,
                         obs_format: Format = None, num_envs: NumEnvs = None,
                         vectorization_mode: VectorizationMode = None, autoreset_mode: AutoresetModeArg = None,
                         resume_run: ResumeRun = None, fork_from: ForkFrom = None,
                         ) -> Annotated[CallToolResult, InstanceOut]:
        return success(await engine.create(env_id=env_id, env_kwargs=env_kwargs, render_mode=render_mode,
                                           num_episodes=num_episodes, max_steps_per_episode=max_steps_per_episode,
                                           obs_format=obs_format, num_envs=num_envs,
                                           vectorization_mode=vectorization_mode, autoreset_mode=autoreset_mode,
                                           resume_run=resume_run,
                                           fork_from=fork_from.model_dump() if fork_from is not None else None))

    async def list_envs() -> Annotated[CallToolResult, InstanceListOut]:
        return success(engine.list())

    Created = Annotated[str, Field(description="An instance_id from create_env.")]

    async def delete_env(instance_id: Created) -> Annotated[CallToolResult, DeletedOut]:
        return success(await engine.delete(instance_id))

    return [
        make_tool(create_env, annotations=WRITE, description=(
            "Open a new env instance of your own, so your episodes never mix with another agent's; pass its "
            "instance_id to every other tool. Its run (with the run manager on) has num_episodes episodes of "
            "at most max_steps_per_episode steps (0 episodes: no limit). resume_run continues a stopped or "
            "interrupted run where it stood; fork_from starts a new run after a recorded step.\n\n"
            "Envs this server allows:\n" + docs.summaries())),
        make_tool(list_envs, annotations=READ, description=(
            "List the live env instances: instance_id, env_id, render mode, whether each needs a reset or "
            "has its episode over, and its current run_id.")),
        make_tool(delete_env, annotations=DESTRUCTIVE, description=(
            "Close and forget an instance you created, when you are done with it (the default instance "
            "cannot be deleted). Its runs stay in the ledger.")),
    ]


def run_tools(engine) -> list[Tool]:
    manager = engine.run_manager

    async def get_run_status(instance_id: InstanceId = None) -> Annotated[CallToolResult, RunStatusOut]:
        return success(await off_loop(manager(instance_id).status))

    async def get_run_statistics(instance_id: InstanceId = None) -> Annotated[CallToolResult, RunStatisticsOut]:
        return success(await off_loop(manager(instance_id).statistics))

    async def reset_run(instance_id: InstanceId = None) -> Annotated[CallToolResult, RunResetOut]:
        return success(await off_loop(manager(instance_id).reset))

    return [
        make_tool(get_run_status, annotations=READ, description=(
            "Progress of an instance's current run (a run is a fixed number of episodes): state (idle, "
            "running, paused, completed, stopped, error), current episode and step, and episodes ended out of the "
            "total.")),
        make_tool(get_run_statistics, annotations=READ, description=(
            "Statistics of an instance's current run, from the ledger: total and average reward and steps and "
            "the success rate (over episodes that ended by themselves; abandoned ones are counted apart), and a "
            "summary of every episode (seed, return, length, success).")),
        make_tool(reset_run, annotations=DESTRUCTIVE, description=(
            "End an instance's current run (an unfinished one is kept as stopped) and start a new one with a fresh "
            "episode count. Needed once a run is completed (reset_env then answers run_completed); the old run "
            "stays in the ledger.")),
    ]


async def with_progress(ctx: Context, call: Callable[[Callable[[int, int], None]], Awaitable[T]]) -> T:
    """Awaits `call(report)`, sending each report(done, total) the owner thread makes as the request's
    notifications/progress (the SDK sends nothing when the client gave no progress token)."""
    loop = asyncio.get_running_loop()
    reports: asyncio.Queue[tuple[int, int]] = asyncio.Queue()

    def report(done: int, total: int) -> None:
        loop.call_soon_threadsafe(reports.put_nowait, (done, total))

    task = asyncio.ensure_future(call(report))
    try:
        while True:
            getter = asyncio.ensure_future(reports.get())
            finished, _ = await asyncio.wait({task, getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter in finished:
                await ctx.report_progress(*_worded(getter.result()))
                continue
            getter.cancel()
            # The owner thread queued every report before it answered (one FIFO of callbacks): send the rest.
            while not reports.empty():
                await ctx.report_progress(*_worded(reports.get_nowait()))
            return task.result()
    finally:
        if not task.done():  # the client went away: the batch still runs to its end on the owner thread
            task.cancel()


def _worded(report: tuple[int, int]) -> tuple[int, int, str]:
    done, total = report
    return done, total, f"{done} of {total} steps"


async def off_loop(fn: Callable[[], T]) -> T:
    """Runs a sync run-manager call (it may touch the ORM) in a worker thread, never on the event loop;
    like a Django request it leaves no expired DB connection behind in that thread."""

    def call() -> T:
        try:
            return fn()
        finally:
            close_old_connections()

    return await anyio.to_thread.run_sync(call)
