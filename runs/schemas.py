"""Wire shapes of the run manager and the ledger (SPEC section 7), shared by REST and MCP."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunState = Literal["idle", "running", "paused", "completed", "stopped", "error"]
REASON = "Why a stopped run was stopped (run reset, instance deleted or closed when idle, server shut down)."
ERROR = ("Why the run is in the error state: the env's exception, the ledger's failure, or interrupted "
         "(its process died).")


class ParentStep(BaseModel):
    """The recorded step a forked run started from (POST /envs fork_from)."""

    run_id: str
    episode_num: int
    step_num: int


class RunProgress(BaseModel):
    episodes: str = Field(description='Ended episodes over the run\'s total, e.g. "2/10".')
    percentage: float = Field(description="Ended episodes as a percentage of the run, 0.0 to 100.0.")


class RunStatusOut(BaseModel):
    success: bool = True
    run_id: str
    state: RunState
    current_episode: int = Field(description="Number of the open or last episode (1-based); 0 before the first reset.")
    current_step: int = Field(description="Steps taken in the current episode.")
    completed_episodes: int = Field(description="Episodes ended (terminated, truncated or abandoned by a reset).")
    total_episodes: int = Field(description="Episodes in the run; 0: no limit.")
    progress: RunProgress


class EpisodeSummary(BaseModel):
    episode_num: int
    env_index: int | None = Field(None, description="The sub-env of a vector instance that played it (0-based); "
                                                    "null for a single env.")
    seed: int | None = Field(description="The seed of its reset (the server draws one when the client sends none).")
    total_steps: int
    total_reward: float
    final_reward: float | None = Field(description="Reward of the episode's last step; null before its first step.")
    done: bool = Field(description="The episode ended by termination, truncation or the step limit "
                                   "(false when abandoned or still open).")
    terminated: bool
    truncated: bool = Field(description="Cut short by the env's time limit or the run's max_steps_per_episode.")
    abandoned: bool = Field(description="Ended before done: by a reset, or because its run ended "
                                        "(error, reset, interruption).")
    success: bool
    duration: float | None = Field(description="Seconds from its reset to its end (to now while open).")


class RunStatisticsOut(BaseModel):
    success: bool = True
    run_id: str
    env_id: str
    instance_id: str
    num_episodes: int
    max_steps_per_episode: int
    success_threshold: float | None = Field(description="Episode return that counts as a success (null: the env's "
                                                        "is_success, else a positive terminal reward).")
    state: RunState
    error: str | None = Field(None, description=ERROR)
    reason: str | None = Field(None, description=REASON)
    parent: ParentStep | None = Field(None, description="A forked run's source step; null for others.")
    created_at: str = Field(description="ISO 8601.")
    start_time: str | None = Field(description="ISO 8601: when its first episode began (null before the first reset).")
    end_time: str | None = Field(description="ISO 8601; null while the run is running or paused.")
    current_episode: int
    current_step: int
    completed_episodes: int = Field(description="Episodes ended, abandoned ones included (they count toward "
                                                "num_episodes).")
    abandoned_episodes: int = Field(description="Episodes ended before done (by a reset, or with their run): "
                                                "never in the averages.")
    total_steps: int
    total_reward: float
    average_reward: float = Field(description="Mean return of the episodes that ended by termination, truncation "
                                              "or the step limit (0.0 when none has).")
    average_steps: float = Field(description="Mean length of those episodes (0.0 when none has).")
    success_rate: float = Field(description="successful_episodes over those episodes (0.0 when none has).")
    successful_episodes: int
    duration: float | None = Field(description="Seconds from the run's start to its end (to now while open).")
    episodes: list[EpisodeSummary]


class RunResetOut(BaseModel):
    success: bool = True
    message: str = "Run reset successfully"
    run_id: str = Field(description="The new run's id.")


class RunSummary(BaseModel):
    run_id: str
    instance_id: str
    env_id: str
    state: RunState
    error: str | None = Field(description=ERROR)
    reason: str | None = Field(description=REASON)
    parent: ParentStep | None
    num_episodes: int
    max_steps_per_episode: int
    completed_episodes: int
    successful_episodes: int
    total_steps: int
    total_reward: float
    created_at: str
    start_time: str | None
    end_time: str | None


class RunListOut(BaseModel):
    success: bool = True
    runs: list[RunSummary]
    count: int = Field(description="Runs matching the filters, across all pages.")
    page: int
    page_size: int
    num_pages: int


class StepRecord(BaseModel):
    step_num: int
    action: Any
    reward: float | None = Field(description="null only when the env returned a non-finite reward.")
    terminated: bool
    truncated: bool
    observation: Any
    info: dict[str, Any]
    created_at: str


class StepListOut(BaseModel):
    success: bool = True
    run_id: str
    episode_num: int
    steps: list[StepRecord]
    count: int
    page: int
    page_size: int
    num_pages: int


class Divergence(BaseModel):
    step_num: int = Field(description="0: the reset's observation.")
    field: Literal["observation", "reward", "terminated", "truncated"]
    recorded: Any
    replayed: Any


class VerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    episode_num: int = Field(ge=1, description="The recorded episode to replay.")


class VerifyOut(BaseModel):
    success: bool = True
    run_id: str
    episode_num: int
    matched: bool = Field(description="Every replayed observation, reward and flag equals the recorded one.")
    steps_checked: int = Field(description="Recorded steps replayed (up to and including a divergence).")
    divergence: Divergence | None = Field(description="The first step that differs; null when all match.")
