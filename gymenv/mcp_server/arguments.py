"""What tools take: arguments exactly as sent, unknown names refused, refusals worded as REST's 422s are."""

import logging
from typing import Annotated, TypeVar, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from gymsite.errors import InvalidArgument, describe_validation_errors

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

DEFAULT_INSTANCE = "default"

# Optional, and null accepted: LLM clients with non-strict tool calling send null for optional arguments.
# The tool body always receives a str: None (sent or defaulted) becomes the default instance.
InstanceId = Annotated[str | None, AfterValidator(lambda v: DEFAULT_INSTANCE if v is None else v), Field(
    validate_default=True,
    description='Which env instance to act on: omit or null for the server\'s default instance ("default"), '
                "or an instance_id returned by create_env.")]


def forbidding_unknown(arg_model: type[M]) -> type[M]:
    """A tool's argument model that refuses names it does not take: a misspelled `instance_id` must be an
    error, not a silent call on the default instance (the SDK's model ignores unknown names)."""
    return cast(type[M], type(arg_model.__name__, (arg_model,), {"model_config": ConfigDict(extra="forbid")}))


def refusal(tool_name: str, exc: ValidationError) -> InvalidArgument:
    """E.g. "invalid arguments for step_env: 'action' is required", every problem named, in REST's words."""
    errors = exc.errors(include_url=False, include_input=False)
    log.info("MCP tool %s refused arguments: %r", tool_name, [e["loc"] for e in errors])
    # REST's formatter reads locs that start with where in the request ("body", then the field).
    detail = describe_validation_errors([{**e, "loc": ("arguments", *e["loc"])} for e in errors])
    return InvalidArgument(f"invalid arguments for {tool_name}: {detail.removeprefix('invalid request: ')}")
