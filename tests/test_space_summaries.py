"""Big spaces are summarized (SPEC 10): uniform Box bounds are scalars, so an image env's info stays small."""

import json

import anyio
import gymnasium as gym
import pytest
from mcp import Client

from gymenv.engine.describe import catalogue_entry
from gymenv.mcp_server.agent_text import EnvDocs

SMALL = 8 * 1024


def get_env_info(door) -> dict:
    async def scenario():
        async with Client(door.server) as client:
            return (await client.call_tool("get_env_info", {})).structured_content

    return anyio.run(scenario)


def test_an_atari_envs_info_is_under_8_kb_over_rest_and_mcp_with_scalar_bounds(door):
    gym.register_envs(pytest.importorskip("ale_py"))
    pong = door(env_id="ALE/Pong-v5")
    reply = pong.rest.get("/info")
    space = reply.body["env_info"]["observation_space"]
    assert space["shape"] == [210, 160, 3] and space["low"] == 0 and space["high"] == 255, space
    assert len(json.dumps(reply.body)) < SMALL, len(json.dumps(reply.body))
    assert len(json.dumps(get_env_info(pong))) < SMALL


def test_cartpoles_unbounded_sides_are_inf_strings_over_rest(door):
    obs = door(env_id="CartPole-v1").get("/info")["env_info"]["observation_space"]
    assert obs["low"][1] == obs["low"][3] == "-inf" and obs["high"][1] == obs["high"][3] == "inf", obs


def test_tool_descriptions_grow_by_a_few_hundred_bytes_per_env_when_many_are_allowed():
    gym.register_envs(pytest.importorskip("ale_py"))
    ids = [i for i in gym.registry if i.startswith("ALE/") and i.endswith("-v5")][:24]
    one, many = EnvDocs({ids[0]: catalogue_entry(ids[0])}, ids[0], runs=True), \
        EnvDocs({i: catalogue_entry(i) for i in ids}, ids[0], runs=True)

    def size(docs: EnvDocs) -> int:
        # What tools/list carries per env: the summaries (twice), the action and observation sections.
        return len(2 * docs.summaries() + docs.actions() + docs.observations())

    assert (size(many) - size(one)) / (len(ids) - 1) < 500, (size(one), size(many))
