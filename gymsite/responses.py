"""The two response shapes every gymsite route sends: a success body and the error body."""

import json

from django.http import HttpResponse
from pydantic import BaseModel


def json_bytes(body) -> bytes:
    # allow_nan=False: the engine already turned non-finite numbers into null; this is the guard.
    return json.dumps(body, allow_nan=False, separators=(",", ":")).encode()


def answer(model: BaseModel, status: int = 200) -> HttpResponse:
    """A typed answer, serialized once (pydantic writes non-finite floats as null)."""
    return HttpResponse(model.model_dump_json(), status=status, content_type="application/json")


def error_response(message: str, code: str, status: int, headers: dict | None = None) -> HttpResponse:
    body = json_bytes({"success": False, "error": message, "code": code})
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response
