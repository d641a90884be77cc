"""Domain errors: each carries the HTTP status and wire code it maps to, once, for REST and MCP."""


class GymsiteError(Exception):
    status = 500
    code = "error"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(GymsiteError):
    status, code = 400, "bad_request"


class Forbidden(GymsiteError):
    status, code = 403, "env_not_allowed"


class NotFound(GymsiteError):
    status, code = 404, "not_found"


class Conflict(GymsiteError):
    status, code = 409, "conflict"


class ResetRequired(Conflict):
    code = "reset_required"


class EpisodeOver(Conflict):
    code = "episode_over"


class RunCompleted(Conflict):
    code = "run_completed"


class RunPaused(Conflict):
    code = "run_paused"


class InvalidArgument(GymsiteError):
    status, code = 422, "invalid_argument"


class InvalidAction(InvalidArgument):
    code = "invalid_action"


class TooManyInstances(GymsiteError):
    status, code = 429, "too_many_instances"


class EnvFailed(GymsiteError):
    """The env itself raised: its message is kept, the run goes to `error`."""

    status, code = 500, "env_error"


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
