"""MCP over HTTP: both protocol eras, no sessions, REST and MCP on the same instances, agents kept apart,
Host/Origin checks, the token and the body limit."""

from importlib.metadata import version

import anyio
import anyio.lowlevel
import gymnasium as gym
import httpx2
import numpy as np
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gymenv.mcp_server import transport_security
from tests.test_mcp_tools import CARTPOLE, MODES, WAIT

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream"}


def connect(srv, body, *, mode="auto", headers=None):
    """Runs `await body(client)` with an `mcp.Client` connected to `srv`'s /mcp over HTTP; returns what it returns."""

    async def scenario():
        with anyio.fail_after(WAIT):
            async with (
                httpx2.AsyncClient(headers=headers or {}, timeout=httpx2.Timeout(30)) as http,
                Client(streamable_http_client(srv.base + "/mcp", http_client=http), mode=mode) as client,
            ):
                return await body(client)

    return anyio.run(scenario)


def call_tools(srv, *calls):
    async def body(client):
        return [await client.call_tool(name, args) for name, args in calls]

    return connect(srv, body)


def post_init(srv, headers=None, content=None):
    return srv.client.post(srv.base + "/mcp", json=INIT if content is None else None, content=content,
                           headers={**ACCEPT, "Content-Type": "application/json", **(headers or {})})


@pytest.mark.parametrize("mode, version", [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
def test_both_protocol_eras_are_served(serve, mode, version):
    async def body(client):
        return client.protocol_version, (await client.call_tool("get_env_info", {})).structured_content

    negotiated, info = connect(serve(**CARTPOLE), body, mode=mode)
    assert negotiated == version and info["env_info"]["id"] == "CartPole-v1"


@pytest.mark.parametrize("mode", MODES)
def test_server_info_reports_the_installed_package_version(serve, mode):
    async def body(client):
        return client.server_info

    info = connect(serve(**CARTPOLE), body, mode=mode)
    assert info.name == "gymsite" and info.version == version("gymsite") != "0"  # "0": not installed


@pytest.mark.parametrize("mode", MODES)
def test_answers_are_one_json_body_in_both_eras_and_carry_no_session(serve, mode):
    seen = []

    async def record(response):
        if response.request.method == "POST" and response.status_code == 200:
            seen.append((response.headers["content-type"], response.headers.get("mcp-session-id")))

    async def scenario():
        with anyio.fail_after(WAIT):
            async with (
                httpx2.AsyncClient(event_hooks={"response": [record]}) as http,
                Client(streamable_http_client(srv.base + "/mcp", http_client=http), mode=mode) as c,
            ):
                await c.call_tool("reset_env", {"seed": 0})
                return await c.call_tool("step_env", {"action": 1})

    srv = serve(**CARTPOLE)
    assert not anyio.run(scenario).is_error
    assert seen and all(ct.startswith("application/json") and session is None for ct, session in seen), seen


def test_mcp_and_rest_drive_the_same_instances(serve):
    srv = serve(**CARTPOLE)
    env = gym.make("CartPole-v1")
    env.reset(seed=11)
    expected = env.step(0)[0].tolist()
    call_tools(srv, ("reset_env", {"seed": 11}))
    r = srv.post("/step", {"action": 0})
    assert r.status == 200 and np.allclose(r.body["observation"], expected, atol=1e-7)
    made = srv.post("/envs", {}).body["instance_id"]
    (listed,) = call_tools(srv, ("list_envs", {}))
    assert made in [i["instance_id"] for i in listed.structured_content["instances"]]


@pytest.mark.parametrize("mode", MODES)
def test_two_agents_on_their_own_instances_do_not_interfere(serve, mode):
    srv = serve(env_id="CartPole-v1", allow_env=("Pendulum-v1",))
    plans = {"CartPole-v1": (21, [0, 1, 1, 0, 1, 0]),
             "Pendulum-v1": (22, [[1.5], [-2.0], [0.25], [0.0], [2.0], [-1.0]])}
    seen = {}

    async def agent(env_id):
        seed, actions = plans[env_id]
        async with (
            httpx2.AsyncClient(timeout=httpx2.Timeout(30)) as http,
            Client(streamable_http_client(srv.base + "/mcp", http_client=http), mode=mode) as client,
        ):
            iid = (await client.call_tool("create_env", {"env_id": env_id})).structured_content["instance_id"]
            observations = [(await client.call_tool("reset_env", {"seed": seed, "instance_id": iid}))
                            .structured_content["observation"]]
            for action in actions:
                result = await client.call_tool("step_env", {"action": action, "instance_id": iid})
                assert not result.is_error, result.content
                observations.append(result.structured_content["observation"])
                await anyio.lowlevel.checkpoint()  # let the other agent in between every step
            seen[env_id] = observations

    async def both():
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(agent, "CartPole-v1")
                tg.start_soon(agent, "Pendulum-v1")

    anyio.run(both)
    for env_id, (seed, actions) in plans.items():
        env = gym.make(env_id)
        expected = [env.reset(seed=seed)[0]]
        expected += [env.step(np.asarray(a, np.float32) if isinstance(a, list) else a)[0] for a in actions]
        assert np.allclose(seen[env_id], np.asarray(expected), atol=1e-5), env_id


def test_a_foreign_host_gets_421_and_a_foreign_origin_403(serve):
    srv = serve(**CARTPOLE)
    assert post_init(srv, {"Host": "evil.example"}).status_code == 421
    assert post_init(srv, {"Host": "evil.example:80"}).status_code == 421
    assert post_init(srv, {"Origin": "http://evil.example"}).status_code == 403
    assert post_init(srv, {"Origin": "http://127.0.0.1.evil.example"}).status_code == 403


def test_local_hosts_and_origins_are_accepted(serve):
    srv = serve(**CARTPOLE)
    port = srv.base.rsplit(":", 1)[1]
    for headers in ({"Host": f"localhost:{port}"}, {"Origin": f"http://127.0.0.1:{port}"},
                    {"Origin": f"http://localhost:{port}"}):
        assert post_init(srv, headers).status_code == 200, headers


def test_host_checks_follow_allowed_hosts(serve, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1", "gym.example.org"]
    srv = serve(**CARTPOLE)
    assert post_init(srv, {"Host": "gym.example.org:8000", "Origin": "https://gym.example.org"}).status_code == 200
    assert post_init(srv, {"Host": "localhost"}).status_code == 421


def test_transport_security_lists_each_host_with_any_port_and_both_schemes():
    rules = transport_security(["127.0.0.1", "::1", ".example.org"])
    assert rules.enable_dns_rebinding_protection is True
    assert rules.allowed_hosts == ["127.0.0.1", "127.0.0.1:*", "[::1]", "[::1]:*", "example.org", "example.org:*"]
    assert "https://[::1]:*" in rules.allowed_origins and "http://example.org" in rules.allowed_origins
    assert transport_security(["*"]).enable_dns_rebinding_protection is False


def test_with_a_token_mcp_answers_401_without_it(serve):
    srv = serve(token="s3cret", **CARTPOLE)
    assert post_init(srv).status_code == 401
    assert post_init(srv, {"Authorization": "Bearer wrong"}).status_code == 401
    assert post_init(srv, {"Authorization": "s3cret"}).status_code == 401
    assert post_init(srv, {"Authorization": "Bearer s3cret"}).status_code == 200

    async def body(client):
        return (await client.call_tool("get_env_info", {})).structured_content

    for mode in MODES:
        info = connect(srv, body, mode=mode, headers={"Authorization": "Bearer s3cret"})
        assert info["env_info"]["id"] == "CartPole-v1"


def test_an_oversized_request_is_413_and_the_server_lives_on(serve):
    srv = serve(**CARTPOLE)
    big = b'{"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"x": "' + b"x" * (4 * 1024 * 1024) + b'"}}'
    try:
        assert post_init(srv, content=big).status_code == 413
    except httpx2.TransportError:
        pass  # the server may answer 413 and close before the client has sent it all
    (answer,) = call_tools(srv, ("get_env_info", {}))
    assert not answer.is_error

