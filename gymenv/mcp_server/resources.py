"""Resources: the env catalogue, each allowed env's docs, and the live instances."""

import json
from collections.abc import Callable

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError

from gymenv.mcp_server.agent_text import EnvDocs
from gymenv.mcp_server.results import worded
from gymsite.errors import GymsiteError, UnknownInstance


def add_resources(server: MCPServer, engine, docs: EnvDocs) -> None:
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
            raise ResourceNotFoundError(worded(err)) from None
        except GymsiteError as err:
            raise ResourceError(worded(err)) from None


def constant(text: str) -> Callable[[], str]:
    def read() -> str:
        return text

    return read
