"""The in-memory REST tier and the OpenAPI contract both tiers are checked against.

`MemoryREST` drives the project's NinjaAPI with Ninja's test clients: no socket, no ASGI handler,
no API middleware (Host, token, content type and body size are the live tier's to show). Each
request carries the engine and the server config as the ASGI handler's requests do
(`request.engine`, `request.server`). `Contract` validates an answer against the response schema
the OpenAPI declares for its operation and status.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from dataclasses import dataclass

from jsonschema import Draft202012Validator
from ninja.testing import TestAsyncClient, TestClient
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from gymsite.api import api
from tests.conftest import Reply, strict_loads

OPENAPI_URI = "urn:gymsite:openapi"


class SyncViews(TestClient):
    """Ninja's TestClient, which reads a streamed answer with a sync loop only; a sync view may stream
    from an async iterator (the JSONL export), read here on the client's event loop."""

    def __init__(self, api, loop: asyncio.Runner):
        super().__init__(api)
        self._loop = loop

    def _call(self, func, request, kwargs):
        response = func(request, **kwargs)
        if response.streaming and inspect.isasyncgen(response.streaming_content):
            response.streaming_content = [self._loop.run(_read(response.streaming_content))]
        return super()._call(lambda request, **_: response, request, kwargs)


async def _read(chunks) -> bytes:
    return b"".join([chunk async for chunk in chunks])


class MemoryREST:
    """REST calls on `engine` without a server. Async views run on one event loop kept for the
    client's life: an owner thread that answers after a timeout posts to that loop, which must not
    be closed under it."""

    def __init__(self, engine, config):
        self.engine, self.config = engine, config
        self._loop = asyncio.Runner()
        self._sync, self._async = SyncViews(api, self._loop), TestAsyncClient(api)

    def request(self, method: str, path: str, body=None, *, raw: bytes | None = None) -> Reply:
        attributes = {"engine": self.engine, "server": self.config}
        if raw is not None:
            attributes["body"] = raw
        elif body is not None:
            attributes["body"] = json.dumps(body)
        if self._is_async(path):
            response = self._loop.run(self._async.request(method, path, **attributes))
        else:
            response = self._sync.request(method, path, **attributes)
        headers = {name.lower(): value for name, value in response.headers.items()}
        return Reply(response.status_code, parse(response.content.decode(), headers.get("content-type", "")), headers)

    def get(self, path, **kw) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw) -> Reply:
        return self.request("POST", path, body, **kw)

    def delete(self, path, **kw) -> Reply:
        return self.request("DELETE", path, **kw)

    def close(self) -> None:
        self.engine.shutdown()
        self._loop.close()

    def _is_async(self, path: str) -> bool:
        url_path = path.split("?")[0].lstrip("/")
        for pattern in self._sync.urls:
            match = pattern.resolve(url_path)
            if match:
                return inspect.iscoroutinefunction(match.func)
        raise LookupError(f"no route for {path}")


def parse(text: str, content_type: str):
    """A JSON body as strict JSON; any other body (a JSON Lines export) as its text."""
    if content_type.split(";")[0] != "application/json":
        return text
    return strict_loads(text) if text else None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the OpenAPI's template, e.g. /envs/{instance_id}/step

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


class Contract:
    """What the OpenAPI promises, checked answer by answer. Object schemas are closed
    (additionalProperties: false unless they say otherwise) so a field the server sends and the
    OpenAPI does not name is a failure too."""

    def __init__(self, openapi: dict):
        # Through JSON: Ninja's schema has int status keys; the served /openapi.json has strings.
        self.openapi = json.loads(json.dumps(openapi))
        resource = Resource.from_contents(closed(self.openapi), default_specification=DRAFT202012)
        self._registry = Registry().with_resource(OPENAPI_URI, resource)

    def operations(self) -> list[Operation]:
        return [Operation(method.upper(), path) for path, item in self.openapi["paths"].items() for method in item]

    def responses(self, operation: Operation) -> dict:
        return self.openapi["paths"][operation.path][operation.method.lower()]["responses"]

    def check(self, operation: Operation, reply: Reply, media_type: str = "application/json") -> None:
        documented = self.responses(operation)
        assert str(reply.status) in documented, \
            f"{operation} answered {reply.status}, which its OpenAPI does not list ({sorted(documented)}): {reply.body}"
        content = documented[str(reply.status)].get("content", {})
        assert media_type in content, f"{operation} {reply.status}: no {media_type} answer documented"
        content_type = {name.lower(): value for name, value in reply.headers.items()}.get("content-type", "")
        assert content_type.split(";")[0] == media_type, (operation, reply.headers)
        pointer = f"/paths/{escape(operation.path)}/{operation.method.lower()}/responses/{reply.status}" \
                  f"/content/{escape(media_type)}/schema"
        validator = Draft202012Validator({"$ref": f"{OPENAPI_URI}#{pointer}"}, registry=self._registry)
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
                    for e in validator.iter_errors(reply.body)]
        assert not problems, f"{operation} {reply.status} breaks its schema: {problems[:5]}"


def escape(token: str) -> str:
    """A JSON Pointer reference token (RFC 6901), percent-encoded for a URI fragment."""
    return token.replace("~", "~0").replace("/", "~1").replace("{", "%7B").replace("}", "%7D")


def closed(schema):
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: closed(value) for key, value in schema.items()}
    if isinstance(out.get("properties"), dict) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out
