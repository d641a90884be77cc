"""Wire shapes shared by REST (OpenAPI) and MCP (tool output schemas): one model per answer."""

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    WithJsonSchema,
    model_serializer,
    model_validator,
)

JSONValue = Any
ObsFormat = Literal["json", "png", "npy", "none"]
OBS_FORMAT = ("How observations are sent: json (plain JSON), png (image observations, or their image parts), "
              "npy (Box observations or parts: base64 of the exact .npy bytes), none (left out). "
              "Default: the instance's (png for image observations, json for all else).")


class WithRunProgress(BaseModel):
    """An answer whose run_progress is absent, not null, with the run manager off (SPEC 7)."""

    # No return annotation: pydantic would take it as the serialized schema, and the OpenAPI
    # would describe these answers as any object at all.
    @model_serializer(mode="wrap")
    def _drop_absent_progress(self, handler: SerializerFunctionWrapHandler):
        body = handler(self)
        if body.get("run_progress", True) is None:
            del body["run_progress"]
        return body


class ResetProgress(BaseModel):
    run_id: str
    episode_num: int
    total_episodes: int = Field(description="Episodes in the run; 0: no limit.")
    max_steps: int
    seed: int | None = Field(None, description="The seed the env was reset with: the request's, or the one the "
                                                "server drew when it sent none (recorded either way).")


class StepProgress(BaseModel):
    run_id: str
    episode_num: int
    step_num: int
    completed_episodes: int
    total_episodes: int
    run_state: str


class ErrorOut(BaseModel):
    success: Literal[False] = False
    error: str = Field(description="What went wrong and what is expected instead.")
    code: str = Field(description="A stable slug, e.g. invalid_action, reset_required, episode_over.")


# What any API route may answer before its view runs (gymsite/asgi.py, gymenv/middleware.py):
# 400 a Host this server does not serve, 401 a missing or wrong token, 413 a body over the limit.
DOOR_ERRORS = {400: ErrorOut, 401: ErrorOut, 413: ErrorOut}


# numpy's SeedSequence takes any non-negative int; the bound caps the work a client can ask for.
MAX_SEED = 2**128
# The seeds the engine takes (gymenv.engine.instance.check_seed), for REST's ResetIn and MCP's reset_env.
SEED_SCHEMA = {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_SEED - 1}, {"type": "null"}]}


# SPEC 14: retry-safe resets and steps.
EXPECTED_EPISODE = ("The number of the episode this reset starts (the run's, 1-based). A retry of the reset just "
                    "answered (same number, seed and options, no step since) gets the same answer again with "
                    "repeated: true; any other number that is not the next is 409 out_of_order.")
EXPECTED_STEP = ("The number, within the current episode (1-based), of the step this request makes. A retry of the "
                 "step just answered (same number and action) gets the same answer again with repeated: true, "
                 "without stepping; any other number that is not the next is 409 out_of_order.")
REPEATED = "true: this answers a retry of the last reset or step, which was not made again."


class ResetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    # Any JSON here: the engine checks seeds and words the 422 itself, as it does for MCP's reset_env.
    seed: Annotated[Any, WithJsonSchema(SEED_SCHEMA)] = Field(
        None, description="Seed for the env's random generator; the same seed replays the same episode.")
    options: dict[str, Any] | None = Field(None, description="Env-specific reset options.")
    obs_format: ObsFormat | None = Field(None, description=OBS_FORMAT)
    expected_episode: int | None = Field(None, ge=1, description=EXPECTED_EPISODE)


class ResetOut(WithRunProgress):
    success: bool = True
    observation: JSONValue = Field(None, description="The first observation of the episode in the request's "
                                                     "obs_format: JSON, an encoded {encoding, data, shape, dtype} "
                                                     "object (or one per image/array part), or null for none.")
    info: dict[str, Any]
    done: bool = False
    run_progress: ResetProgress | None = Field(None, description="Absent when the run manager is off.")
    repeated: bool = Field(False, description=REPEATED)


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    action: JSONValue = Field(None, description="An action in the env's action space, as JSON (see "
                                                "env_info.action_schema); a vector instance takes a list of "
                                                "num_envs actions. Send either action or actions.")
    actions: list[JSONValue] | None = Field(
        None, min_length=1, description="A batch: actions taken in order until the list or the episode ends "
                                        "(at most the server's --max-batch; all are checked before the first "
                                        "step). Send either action or actions.")
    return_: Literal["all", "last"] = Field(
        "all", alias="return", description="For a batch: all gives every step's observation and info; last "
                                           "only the last step's (rewards and flags stay complete).")
    obs_format: ObsFormat | None = Field(None, description=OBS_FORMAT)
    expected_step: int | None = Field(None, ge=1, description=EXPECTED_STEP)

    @model_validator(mode="after")
    def _one_step_or_a_batch(self):
        given = "action" in self.model_fields_set
        if given and self.actions is not None:
            raise ValueError("send either action (one step) or actions (a batch), not both")
        if not given and self.actions is None:
            raise ValueError("'action' is required (or 'actions', a batch)")
        return self


class StepOut(WithRunProgress):
    success: bool = True
    observation: JSONValue = Field(None, description="The observation after the step, in the request's obs_format.")
    reward: float | None = Field(description="null only when the env returned a non-finite reward.")
    terminated: bool
    truncated: bool
    done: bool = Field(description="terminated or truncated: the episode is over and the next call must be a reset.")
    info: dict[str, Any]
    run_progress: StepProgress | None = Field(None, description="Absent when the run manager is off.")
    repeated: bool = Field(False, description=REPEATED)


class BatchStepOut(WithRunProgress):
    """SPEC 11: one entry per step taken (with return: last, observations and infos hold the last step's only)."""

    success: bool = True
    steps: int = Field(description="Steps taken: the batch's length, or fewer when the episode ended inside it.")
    observations: list[JSONValue]
    rewards: list[float | None]
    terminated: list[bool]
    truncated: list[bool]
    infos: list[dict[str, Any]]
    done: bool = Field(description="The episode is over after the last step taken: the next call must be a reset.")
    run_progress: StepProgress | None = Field(None, description="After the last step; absent when the run "
                                                                "manager is off.")


class VectorResetProgress(BaseModel):
    run_id: str
    episode_nums: list[int | None] = Field(description="The episode each sub-env plays now, by env_index (null: "
                                                       "the run has no episode left for it to start).")
    total_episodes: int
    max_steps: int


class VectorStepProgress(BaseModel):
    run_id: str
    episode_nums: list[int | None] = Field(description="Each sub-env's open episode (null: none is open).")
    step_nums: list[int] = Field(description="Steps taken in each sub-env's open episode.")
    completed_episodes: int = Field(description="Episodes ended, across sub-envs.")
    total_episodes: int
    run_state: str


class VectorResetOut(WithRunProgress):
    success: bool = True
    observation: JSONValue = Field(None, description="The num_envs first observations (sub-env i seeded seed + i).")
    info: dict[str, Any] = Field(description="As gymnasium's vector envs give it: arrays with _key masks.")
    done: bool = False
    run_progress: VectorResetProgress | None = Field(None, description="Absent when the run manager is off.")


class VectorStepOut(WithRunProgress):
    success: bool = True
    observation: JSONValue = Field(None, description="The num_envs observations after the step.")
    reward: list[float | None]
    terminated: list[bool]
    truncated: list[bool]
    done: list[bool] = Field(description="terminated or truncated, per sub-env; with the next_step autoreset such "
                                         "a sub-env's next step is its reset (its action is ignored).")
    info: dict[str, Any] = Field(description="As gymnasium's vector envs give it: arrays with _key masks.")
    run_progress: VectorStepProgress | None = Field(None, description="Absent when the run manager is off.")


class RenderIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    mode: str | None = Field(None, min_length=1, max_length=40,
                             description="Render mode; must be the instance's own (see env_info.render_mode).")


class RenderOut(BaseModel):
    success: bool = True
    mode: str
    type: Literal["image_base64", "text"]
    format: str | None = Field(None, description="png for image renders.")
    render: str = Field(description="Base64 PNG for image renders, the text itself for ansi.")
    shape: list[int] | None = Field(None, description="Frame shape [height, width, channels] for image renders.")


class CloseOut(BaseModel):
    success: bool = True
    status: Literal["closed"] = "closed"


class EnvInfo(BaseModel):
    id: str
    instance_id: str
    action_space: dict[str, Any]
    observation_space: dict[str, Any]
    action_schema: dict[str, Any] = Field(description="A JSON Schema that exactly the valid actions satisfy.")
    action_meanings: list[str] | None = Field(
        None, description="What each Discrete action does, in action order; null when the env does not say.")
    observation_meaning: str | None = Field(
        None, description="How to read this instance's observation (e.g. FrozenLake's map); null when the docs "
                           "suffice.")
    max_episode_steps: int | None
    reward_threshold: float | None
    render_mode: str | None
    render_modes: list[str]
    description: str


class VectorEnvInfo(EnvInfo):
    """A vector instance's env_info: action_space, observation_space and action_schema are the batched ones."""

    num_envs: int
    vectorization_mode: Literal["sync", "async"]
    autoreset_mode: Literal["next_step", "same_step", "disabled"]
    single_action_space: dict[str, Any]
    single_observation_space: dict[str, Any]


class EnvInfoOut(BaseModel):
    success: bool = True
    env_info: VectorEnvInfo | EnvInfo


class SampleOut(BaseModel):
    success: bool = True
    action: JSONValue = Field(description="A random valid action, as JSON.")


RESUME_RUN = ("A stopped or interrupted run to go on with: the new instance replays its open episode (seed and "
              "actions) and continues the same run from its last recorded step (409 replay_diverged when the "
              "replay does not reproduce the record). The run's env, kwargs and lengths are used.")
FORK_FROM = ("A recorded step to start from: the new instance is in the state after that step (step_num 0: after the "
             "reset), in a new run whose parent is that step.")


class ForkFrom(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    run_id: str = Field(min_length=1, max_length=80)
    episode_num: int = Field(ge=1)
    step_num: int = Field(ge=0, description="0: the state right after the episode's reset.")


class InstanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    env_id: str | None = Field(None, min_length=1, max_length=200,
                               description="An env id the server allows; the default instance's env when absent.")
    env_kwargs: dict[str, Any] | None = Field(
        None, description="Keyword arguments for gymnasium.make (only if the operator allows it).")
    render_mode: str | None = Field(None, min_length=1, max_length=40,
                                    description="rgb_array or ansi; the env's best mode when absent.")
    num_episodes: int | None = Field(None, ge=0, le=1_000_000, description="Episodes in the run; 0: no limit.")
    max_steps_per_episode: int | None = Field(None, ge=1, le=100_000_000)
    obs_format: ObsFormat | None = Field(None, description="This instance's default obs_format. " + OBS_FORMAT)
    num_envs: int | None = Field(None, description="Open a vector instance of this many sub-envs (2 to the "
                                                   "server's --max-num-envs), through gymnasium.make_vec.")
    vectorization_mode: Literal["sync", "async"] | None = Field(
        None, description="With num_envs: sync (one thread, the default) or async (a process per sub-env).")
    autoreset_mode: Literal["next_step", "same_step", "disabled"] | None = Field(
        None, description="With num_envs: when an ended sub-env resets (gymnasium's AutoresetMode; next_step "
                          "by default).")
    resume_run: str | None = Field(None, min_length=1, max_length=80, description=RESUME_RUN)
    fork_from: ForkFrom | None = Field(None, description=FORK_FROM)


class Instance(BaseModel):
    instance_id: str
    env_id: str
    render_mode: str | None
    obs_format: ObsFormat = Field(description="How this instance sends observations unless a request says otherwise.")
    created_at: str
    last_used_at: str
    needs_reset: bool
    episode_over: bool
    run_id: str | None = None
    num_envs: int | None = Field(None, description="Sub-envs of a vector instance; null for a single env.")


class InstanceOut(Instance):
    success: bool = True


class InstanceListOut(BaseModel):
    success: bool = True
    instances: list[Instance]


class HealthOut(BaseModel):
    status: Literal["healthy"] = "healthy"
    env_id: str
    instances: int


class DeletedOut(BaseModel):
    success: bool = True
    instance_id: str
    status: Literal["deleted"] = "deleted"
