"""MCP resources (the env catalogue, each env's docs, live instances) and the play_env prompt, in memory."""

import json

import pytest
from mcp.shared.exceptions import MCPError

from gymenv.mcp_server.viewer import VIEWER_URI
from tests.test_mcp_tools import MODES, connect

TWO_ENVS = {"env_id": "CartPole-v1", "allow_env": ("Pendulum-v1",)}


async def read_json(client, uri):
    (content,) = (await client.read_resource(uri)).contents
    assert content.mime_type == "application/json"
    return json.loads(content.text)


@pytest.mark.parametrize("mode", MODES)
def test_the_catalogue_lists_the_allowed_envs_with_their_spaces_and_docs(door, mode):
    async def body(client):
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        return uris, await read_json(client, "gym://envs"), await read_json(client, "gym://envs/Pendulum-v1")

    uris, catalogue, pendulum = connect(door(**TWO_ENVS), body, mode=mode)
    assert uris == {"gym://envs", "gym://envs/CartPole-v1", "gym://envs/Pendulum-v1", "gym://instances", VIEWER_URI}
    assert [e["env_id"] for e in catalogue] == ["CartPole-v1", "Pendulum-v1"]
    assert catalogue[0]["action_space"]["n"] == 2 and "Push cart to the left" in catalogue[0]["description"]
    assert pendulum["action_schema"]["type"] == "array" and pendulum["max_episode_steps"] == 200


def test_instances_are_resources_too(door):
    srv = door(**TWO_ENVS)
    made = srv.post("/envs", {"env_id": "Pendulum-v1"})["instance_id"]

    async def body(client):
        templates = [t.uri_template for t in (await client.list_resource_templates()).resource_templates]
        listed = await read_json(client, "gym://instances")
        one = await read_json(client, f"gym://instances/{made}")
        with pytest.raises(MCPError) as missing:
            await client.read_resource("gym://instances/nope")
        return templates, listed, one, missing.value

    templates, listed, one, missing = connect(srv, body)
    assert templates == ["gym://instances/{instance_id}"]
    assert {i["instance_id"] for i in listed["instances"]} == {"default", made}
    assert one["env_info"]["id"] == "Pendulum-v1" and one["env_info"]["instance_id"] == made
    assert "'nope'" in str(missing)


def test_the_play_env_prompt_sets_an_agent_up_to_play(door):
    async def body(client):
        (prompt,) = (await client.list_prompts()).prompts
        fresh = await client.get_prompt("play_env", {"env_id": "Pendulum-v1"})
        shared = await client.get_prompt("play_env", {"instance_id": "default"})
        return prompt, fresh.messages[0].content.text, shared.messages[0].content.text

    prompt, fresh, shared = connect(door(**TWO_ENVS), body)
    assert prompt.name == "play_env" and {a.name for a in prompt.arguments} == {"env_id", "instance_id"}
    assert "Pendulum-v1" in fresh and 'create_env(env_id="Pendulum-v1")' in fresh and "Torque" in fresh
    assert '"type": "array"' in fresh and "step_env" in fresh and "reset_env" in fresh
    assert "CartPole-v1" in shared and 'instance_id="default"' in shared and "475" in shared


def test_the_play_env_prompt_refuses_an_env_or_instance_it_does_not_have(door):
    async def body(client):
        refused = []
        for args in ({"env_id": "Acrobot-v1"}, {"instance_id": "nope"}):
            with pytest.raises(MCPError) as error:
                await client.get_prompt("play_env", args)
            refused.append(str(error.value))
        return refused

    env, instance = connect(door(**TWO_ENVS), body)
    assert "Acrobot-v1" in env and "not allowed" in env and "'nope'" in instance


def test_the_server_tells_agents_how_to_use_it(door):
    async def body(client):
        return client.instructions

    for mode in MODES:
        instructions = connect(door(**TWO_ENVS), body, mode=mode)
        assert instructions and "create_env" in instructions and "Pendulum-v1" in instructions, mode
