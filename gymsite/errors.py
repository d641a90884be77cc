"""The project's errors, named for what went wrong. Each door (REST, MCP, Python) maps them to its
own wire form in one place, and words `remedy` (what the client can do next) in its own terms."""

from __future__ import annotations

from collections.abc import Mapping


class GymsiteError(Exception):
    code = "error"
    # A key of each door's remedy table ("list_instances", "reset_run", ...): REST says
    # "GET /envs lists the live ones", MCP says "list_envs lists the live ones".
    remedy: str | None = None

    def __init__(self, message: str, *, code: str | None = None, remedy: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if remedy is not None:
            self.remedy = remedy

    def worded(self, remedies: Mapping[str, str]) -> str:
        """The message with the remedy in one door's words."""
        if self.remedy is None or self.remedy not in remedies:
            return self.message
        return f"{self.message}; {remedies[self.remedy]}"


class InvalidArgument(GymsiteError):
    """A client sent something the server does not take: nothing changed."""

    code = "invalid_argument"


class InvalidAction(InvalidArgument):
    code = "invalid_action"


class EnvNotAllowed(GymsiteError):
    code = "env_not_allowed"


class UnknownInstance(GymsiteError):
    code, remedy = "not_found", "list_instances"


class UnknownRun(GymsiteError):
    code, remedy = "not_found", "list_runs"


class RunTrackingOff(GymsiteError):
    code = "run_manager_disabled"


class StateConflict(GymsiteError):
    """The request is well-formed but the instance or run is not in a state that takes it."""

    code = "conflict"


class ResetRequired(StateConflict):
    code = "reset_required"


class EpisodeOver(StateConflict):
    code = "episode_over"


class RunCompleted(StateConflict):
    code, remedy = "run_completed", "reset_run"


class RunPaused(StateConflict):
    code, remedy = "run_paused", "resume_run"


class RunEnded(StateConflict):
    code, remedy = "run_error", "reset_run"


class RunStopped(StateConflict):
    code, remedy = "run_stopped", "reset_run"


class OutOfOrder(StateConflict):
    """A reset or step whose expected_episode / expected_step is neither the next one nor a retry of the last."""

    code = "out_of_order"


class ReplayDiverged(StateConflict):
    """Replaying a recorded episode's seed and actions did not reproduce what the ledger holds."""

    code = "replay_diverged"


class RunNotResumable(StateConflict):
    code = "run_not_resumable"


class DefaultInstanceKept(StateConflict):
    code, remedy = "default_instance", "close_env"


class InstanceClosed(StateConflict):
    """The instance was deleted or reaped while this call was on its way to it."""

    code, remedy = "instance_closed", "list_instances"


class InstanceLimit(GymsiteError):
    code, remedy = "too_many_instances", "delete_instance"


class EnvFailed(GymsiteError):
    """The env itself raised: its message is kept, the run goes to `error`."""

    code = "env_error"


class InstanceLost(EnvFailed):
    """The process serving the instance died (a Ray actor or its node): its run ended in `error`."""

    code = "instance_lost"


class EnvTimeout(GymsiteError):
    """The env did not answer within the server's bound (a hung env must not hang its clients)."""

    code = "env_timeout"


class LedgerFailed(GymsiteError):
    """The ledger could not commit a write: the answer is withheld rather than given unrecorded."""

    code = "ledger_error"


def describe_validation_errors(errors: list[dict]) -> str:
    """Pydantic's errors as one sentence a client can act on: where, what was wrong, what is expected."""
    parts = []
    for err in errors[:5]:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        where = ".".join(loc[1:] if len(loc) > 1 else loc) or "body"
        if err.get("type") == "missing":
            parts.append(f"{where!r} is required")
        elif err.get("type") == "extra_forbidden":
            parts.append(f"{where!r} is not a known field")
        else:
            parts.append(f"{where!r}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)
