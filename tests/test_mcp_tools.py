"""MCP tools in memory: the real `mcp` v2 client on the server `build_server` makes, the real engine and
database, no HTTP (tests/test_mcp_transport.py has that)."""

import base64
import json

import anyio
import gymnasium as gym
import jsonschema
import numpy as np
import pytest
from mcp import Client

import gymsite.errors
from gymenv.mcp_server.results import MCP_REMEDIES

CARTPOLE = {"env_id": "CartPole-v1"}
MODES = ["auto", "legacy"]  # the SDK's sessionless 2026-07-28 default, and the initialize handshake
ENV_TOOLS = {"reset_env", "step_env", "render_env", "close_env", "get_env_info", "sample_action"}
MORE_TOOLS = {"create_env", "list_envs", "delete_env", "get_run_status", "get_run_statistics", "reset_run"}
WAIT = 60  # seconds any one MCP scenario may take
FAILURE_SCHEMA = {"type": "object", "additionalProperties": False, "required": ["success", "error", "code"],
                  "properties": {"success": {"const": False}, "error": {"type": "string"}, "code": {"type": "string"}}}


def connect(door, body, *, mode="auto"):
    """Runs `await body(client)` with an `mcp.Client` connected in memory to `door`'s server; returns its result."""

    async def scenario():
        with anyio.fail_after(WAIT):
            async with Client(door.server, mode=mode) as client:
                return await body(client)

    return anyio.run(scenario)


def call_tools(srv, *calls, mode="auto"):
    """Calls each (tool, arguments) in order on one client; returns the CallToolResults."""

    async def body(client):
        return [await client.call_tool(name, args) for name, args in calls]

    return connect(srv, body, mode=mode)


def list_tools(srv, mode="auto"):
    async def body(client):
        return {t.name: t for t in (await client.list_tools()).tools}

    return connect(srv, body, mode=mode)


def text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def assert_tool_error(result, code, *needles):
    assert result.is_error, result
    assert result.structured_content["success"] is False and result.structured_content["code"] == code, result
    assert f"(code: {code})" in text(result)
    for needle in needles:
        assert needle in text(result), text(result)


def gym_reference(env_id, seed, actions):
    env = gym.make(env_id)
    out = [env.reset(seed=seed)[0]]
    for a in actions:
        out.append(env.step(np.asarray(a, env.action_space.dtype) if isinstance(a, list) else a)[0])
    env.close()
    return [np.asarray(o).tolist() for o in out]


# -- listing -------------------------------------------------------------------------------------------

def test_it_lists_every_tool_with_a_description_and_an_output_schema(door):
    tools = list_tools(door(**CARTPOLE))
    assert set(tools) == ENV_TOOLS | MORE_TOOLS
    for tool in tools.values():
        assert tool.description and tool.output_schema and tool.output_schema["type"] == "object", tool.name
        assert tool.input_schema.get("additionalProperties") is False, tool.name
    assert "instance_id" in tools["step_env"].input_schema["properties"]
    # One step, a batch or a vector step: each answer is a model of its own, published as its required
    # names with its fields' types in words (output_schemas.py: what a handshake-era client checks cheaply).
    step, batch, vector = tools["step_env"].output_schema["anyOf"]
    assert set(step["required"]) >= {"reward", "done", "info"}
    assert "run_progress (object or null)" in step["description"]
    assert set(batch["required"]) >= {"steps", "observations", "rewards", "terminated", "truncated", "infos", "done"}
    assert set(vector["required"]) >= {"reward", "terminated", "truncated", "done", "info"}
    assert "reward (array)" in vector["description"]


def test_step_env_action_is_typed_by_the_env_action_space(door):
    tools = list_tools(door(**CARTPOLE))
    properties = tools["step_env"].input_schema["properties"]
    assert properties["action"]["type"] == "integer"
    # action or a batch of actions: the schema requires neither; step_env refuses neither and both.
    assert "required" not in tools["step_env"].input_schema
    assert {"type": "array", "items": {}, "minItems": 1} in properties["actions"]["anyOf"]


def test_with_several_envs_the_action_schema_is_any_of_theirs(door):
    tools = list_tools(door(env_id="CartPole-v1", allow_env=("Pendulum-v1", "DictToy-v0")))
    action = tools["step_env"].input_schema["properties"]["action"]
    kinds = sorted(s.get("type") for s in action["anyOf"])
    assert kinds == ["array", "integer", "object"], action
    env_id = tools["create_env"].input_schema["properties"]["env_id"]
    assert env_id["anyOf"][0]["enum"] == ["CartPole-v1", "Pendulum-v1", "DictToy-v0"]


def test_read_tools_are_annotated_read_only_and_writes_are_not(door):
    tools = list_tools(door(**CARTPOLE))
    for name in ("get_env_info", "list_envs", "sample_action", "render_env", "get_run_status", "get_run_statistics"):
        assert tools[name].annotations.read_only_hint is True, name
    for name in ("reset_env", "step_env", "close_env", "create_env", "delete_env", "reset_run"):
        assert tools[name].annotations.read_only_hint is False, name


def test_descriptions_tell_an_agent_what_the_env_and_its_actions_are(door):
    tools = list_tools(door(env_id="CartPole-v1", allow_env=("Pendulum-v1",)))
    assert "Push cart to the left" in tools["step_env"].description
    assert "Torque" in tools["step_env"].description
    assert "Cart Position" in tools["reset_env"].description
    assert "Pendulum-v1" in tools["create_env"].description and "pole" in tools["get_env_info"].description


# -- env tools -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_reset_and_step_follow_gymnasium(door, mode):
    ref = gym_reference("CartPole-v1", 42, [1, 0])
    reset, one, two = call_tools(door(**CARTPOLE), ("reset_env", {"seed": 42}), ("step_env", {"action": 1}),
                                 ("step_env", {"action": 0}), mode=mode)
    assert not reset.is_error and np.allclose(reset.structured_content["observation"], ref[0], atol=1e-7)
    assert one.structured_content["reward"] == 1.0 and one.structured_content["done"] is False
    assert np.allclose(one.structured_content["observation"], ref[1], atol=1e-7)
    assert np.allclose(two.structured_content["observation"], ref[2], atol=1e-7)


def test_results_are_the_rest_body_as_structured_content_and_json_text(door):
    srv = door(**CARTPOLE)
    reset, step = call_tools(srv, ("reset_env", {"seed": 3}), ("step_env", {"action": 1}))
    srv.post("/reset", {"seed": 3})
    rest_step = srv.post("/step", {"action": 1})
    assert step.structured_content.keys() == rest_step.keys()
    assert step.structured_content["observation"] == rest_step["observation"]
    assert json.loads(text(step)) == step.structured_content and json.loads(text(reset)) == reset.structured_content


def test_an_invalid_action_is_a_tool_error_with_the_message_rest_gives(door):
    srv = door(**CARTPOLE)
    srv.post("/reset", {"seed": 1})
    rest = srv.post("/step", {"action": 7})
    (result,) = call_tools(srv, ("step_env", {"action": 7}))
    assert_tool_error(result, "invalid_action", "Discrete(2)", "0..1")
    assert result.structured_content == rest


@pytest.mark.parametrize("bad", ["1", "[1]", True, 1.0, [1], None])
def test_actions_are_never_coerced(door, bad):
    (_, result) = call_tools(door(**CARTPOLE), ("reset_env", {"seed": 1}), ("step_env", {"action": bad}))
    assert_tool_error(result, "invalid_action", "Discrete(2)")


def test_a_box_action_is_a_json_array_not_a_string(door):
    srv = door(env_id="Pendulum-v1")
    ref = gym_reference("Pendulum-v1", 5, [[-1.0]])
    _, ok, as_string = call_tools(srv, ("reset_env", {"seed": 5}), ("step_env", {"action": [-1.0]}),
                                  ("step_env", {"action": "[-1.0]"}))
    assert not ok.is_error and np.allclose(ok.structured_content["observation"], ref[1], atol=1e-6)
    assert_tool_error(as_string, "invalid_action")


def test_a_dict_action_is_a_json_object(door):
    _, result = call_tools(door(env_id="DictToy-v0"), ("reset_env", {}),
                           ("step_env", {"action": {"move": 2, "force": [0.5, -0.5]}}))
    assert not result.is_error, text(result)
    assert result.structured_content["observation"] == [2.0, 0.5] and result.structured_content["terminated"] is True


def test_an_unknown_argument_is_refused_not_ignored(door):
    ref = gym_reference("CartPole-v1", 1, [1])
    _, refused, step = call_tools(door(**CARTPOLE), ("reset_env", {"seed": 1}),
                                  ("step_env", {"action": 1, "instance": "mine"}), ("step_env", {"action": 1}))
    assert_tool_error(refused, "invalid_argument", "'instance' is not a known")
    assert np.allclose(step.structured_content["observation"], ref[1], atol=1e-7)  # the refused call did nothing


@pytest.mark.parametrize("tool, args, detail", [
    ("step_env", {}, "'action' is required (or 'actions', a batch)"),
    ("step_env", {"action": 1, "foo": 2}, "'foo' is not a known field"),
    ("reset_env", {"options": 5}, "'options': Input should be a valid dictionary"),
    ("get_env_info", {"instance_id": 5}, "'instance_id': Input should be a valid string"),
    ("create_env", {"num_episodes": "3"}, "'num_episodes': Input should be a valid integer"),
    ("delete_env", {}, "'instance_id' is required"),
])
def test_missing_mistyped_or_unknown_arguments_get_one_line_invalid_argument_errors(door, tool, args, detail):
    srv = door(**CARTPOLE)
    message = f"invalid arguments for {tool}: {detail}"
    (result,) = call_tools(srv, (tool, args))
    assert_tool_error(result, "invalid_argument")
    assert result.structured_content == {"success": False, "error": message, "code": "invalid_argument"}
    assert text(result) == f"{message} (code: invalid_argument)"  # one line, no pydantic dump
    assert len(srv.engine.instances()) == 1


def test_every_problem_with_the_arguments_is_named_in_one_answer(door):
    (result,) = call_tools(door(**CARTPOLE), ("reset_env", {"seed": 1, "options": [], "mode": "x"}))
    assert result.structured_content["error"] == (
        "invalid arguments for reset_env: 'options': Input should be a valid dictionary; 'mode' is not a known field")


def test_argument_errors_are_worded_as_rest_words_its_422s(door):
    srv = door(**CARTPOLE)
    rest = srv.post("/envs", {"num_episodes": 0, "max_steps_per_episode": "9"})
    (result,) = call_tools(srv, ("create_env", {"num_episodes": 0, "max_steps_per_episode": "9"}))
    assert rest["code"] == result.structured_content["code"] == "invalid_argument"
    assert result.structured_content["error"].removeprefix("invalid arguments for create_env: ") \
        == rest["error"].removeprefix("invalid request: ")


@pytest.mark.parametrize("seed", [-1, "5", 1.5, True, 2**200])
def test_a_bad_seed_gets_the_message_rest_gives(door, seed):
    srv = door(**CARTPOLE)
    rest = srv.post("/reset", {"seed": seed})
    (result,) = call_tools(srv, ("reset_env", {"seed": seed}))
    assert_tool_error(result, "invalid_argument", "seed")
    assert result.structured_content == rest


def test_stepping_before_reset_or_after_the_episode_ended_is_a_conflict(door):
    srv = door(**CARTPOLE)
    calls = [("step_env", {"action": 0}), ("reset_env", {"seed": 0})] + [("step_env", {"action": 0})] * 12
    results = call_tools(srv, *calls)
    assert_tool_error(results[0], "reset_required", "reset")
    done_at = next(i for i, r in enumerate(results[2:], 2) if not r.is_error and r.structured_content["done"])
    assert_tool_error(results[done_at + 1], "episode_over", "reset")


def test_render_env_gives_png_image_content_with_its_metadata(door):
    _, result = call_tools(door(**CARTPOLE), ("reset_env", {"seed": 1}), ("render_env", {}))
    assert not result.is_error
    (image,) = [c for c in result.content if c.type == "image"]
    assert image.mime_type == "image/png" and base64.b64decode(image.data)[:8] == b"\x89PNG\r\n\x1a\n"
    body = result.structured_content
    assert body["type"] == "image_base64" and body["format"] == "png" and body["shape"] == [400, 600, 3]
    assert body["render"] == image.data


def test_render_env_gives_text_for_an_ansi_instance(door):
    srv = door(env_id="FrozenLake-v1", render_mode="ansi")
    _, result = call_tools(srv, ("reset_env", {"seed": 0}), ("render_env", {}))
    assert [c.type for c in result.content] == ["text"] and "F" in text(result)
    assert result.structured_content["type"] == "text" and result.structured_content["render"] == text(result)


def test_render_env_in_another_mode_explains_how_to_get_it(door):
    _, result = call_tools(door(**CARTPOLE), ("reset_env", {}), ("render_env", {"mode": "ansi"}))
    assert_tool_error(result, "invalid_argument", "rgb_array")


def test_close_env_then_reset_env_recreates_the_env(door):
    closed, step, reset, again = call_tools(door(**CARTPOLE), ("close_env", {}), ("step_env", {"action": 0}),
                                            ("reset_env", {"seed": 2}), ("step_env", {"action": 0}))
    assert closed.structured_content == {"success": True, "status": "closed"}
    assert_tool_error(step, "reset_required")
    assert not reset.is_error and not again.is_error


def test_sample_action_gives_a_valid_action(door):
    results = call_tools(door(**CARTPOLE), *[("sample_action", {})] * 5)
    assert all(r.structured_content["action"] in (0, 1) for r in results)


def test_get_env_info_describes_the_env_for_an_agent(door):
    (result,) = call_tools(door(**CARTPOLE), ("get_env_info", {}))
    info = result.structured_content["env_info"]
    assert info["id"] == "CartPole-v1" and info["instance_id"] == "default"
    assert info["action_space"]["n"] == 2 and info["action_schema"]["type"] == "integer"
    assert "Push cart to the left" in info["description"] and info["reward_threshold"] == 475.0


@pytest.mark.parametrize("mode", MODES)
def test_a_null_instance_id_means_the_default_instance_on_every_tool(door, mode):
    ref = gym_reference("CartPole-v1", 4, [1])
    srv = door(env_id="CartPole-v1", run_manager=True, num_episodes=3)
    none = {"instance_id": None}
    results = call_tools(srv, ("reset_env", {"seed": 4, **none}), ("step_env", {"action": 1, **none}),
                         ("render_env", none), ("sample_action", none), ("get_env_info", none),
                         ("get_run_status", none), ("get_run_statistics", none), ("reset_run", none),
                         ("close_env", none), mode=mode)
    for result in results:
        assert not result.is_error, text(result)
    reset, step, _, _, info, status, *_ = (r.structured_content for r in results)
    assert np.allclose(reset["observation"], ref[0], atol=1e-7) and np.allclose(step["observation"], ref[1], atol=1e-7)
    assert info["env_info"]["instance_id"] == "default" and status["current_step"] == 1
    assert srv.get("/run/status")["run_id"] == results[7].structured_content["run_id"]  # reset_run hit default


def test_instance_id_is_optional_and_nullable_in_every_schema_that_has_it(door):
    tools = list_tools(door(**CARTPOLE))
    with_it = {name for name, tool in tools.items() if "instance_id" in tool.input_schema["properties"]}
    assert with_it == (ENV_TOOLS | MORE_TOOLS) - {"create_env", "list_envs"}
    for name in with_it - {"delete_env"}:  # delete_env names an instance of yours: never the default
        schema = tools[name].input_schema
        prop = schema["properties"]["instance_id"]
        assert "instance_id" not in schema.get("required", []), name
        assert {"type": "null"} in prop["anyOf"] and prop["default"] is None, name
        assert "omit or null" in prop["description"] and "create_env" in prop["description"], name


def test_an_unknown_instance_is_not_found_for_every_env_tool(door):
    srv = door(**CARTPOLE)
    args = {"instance_id": "nope"}
    results = call_tools(srv, ("reset_env", args), ("step_env", {"action": 0, **args}), ("render_env", args),
                         ("close_env", args), ("get_env_info", args), ("sample_action", args), ("delete_env", args),
                         ("get_run_status", args))
    for result in results:
        assert_tool_error(result, "not_found", "'nope'")


def test_an_env_that_raises_is_an_env_error_and_the_server_lives_on(door):
    srv = door(env_id="ExplodingToy-v0")
    _, first, boom, after, reset = call_tools(srv, ("reset_env", {}), ("step_env", {"action": 0}),
                                              ("step_env", {"action": 0}), ("step_env", {"action": 0}),
                                              ("reset_env", {}))
    assert not first.is_error and first.structured_content["info"] == {"note": None}
    assert_tool_error(boom, "env_error", "the physics engine diverged")
    assert_tool_error(after, "reset_required")
    assert not reset.is_error


def test_an_unexpected_failure_is_a_clear_tool_error(door, monkeypatch):
    srv = door(**CARTPOLE)

    async def broken(instance_id):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(srv.engine, "sample", broken)
    (result,) = call_tools(srv, ("sample_action", {}))
    assert_tool_error(result, "internal_error", "sample_action failed", "ZeroDivisionError")
    assert "oops" not in text(result)  # the exception's own text stays in the server log


# -- instances -------------------------------------------------------------------------------------------

def test_create_list_and_delete_instances(door):
    srv = door(env_id="CartPole-v1", allow_env=("Pendulum-v1",))

    async def body(client):
        made = (await client.call_tool("create_env", {"env_id": "Pendulum-v1"})).structured_content
        listed = (await client.call_tool("list_envs", {})).structured_content
        deleted = await client.call_tool("delete_env", {"instance_id": made["instance_id"]})
        default = await client.call_tool("delete_env", {"instance_id": "default"})
        return made, listed, deleted, default, (await client.call_tool("list_envs", {})).structured_content

    made, listed, deleted, default, after = connect(srv, body)
    assert made["success"] is True and made["env_id"] == "Pendulum-v1" and made["render_mode"] == "rgb_array"
    assert {i["instance_id"] for i in listed["instances"]} == {"default", made["instance_id"]}
    assert deleted.structured_content == {"success": True, "instance_id": made["instance_id"], "status": "deleted"}
    assert_tool_error(default, "default_instance")
    assert [i["instance_id"] for i in after["instances"]] == ["default"]


def test_create_env_refuses_what_the_operator_did_not_allow(door):
    srv = door(**CARTPOLE)
    other, module, kwargs, steps = call_tools(
        srv, ("create_env", {"env_id": "Pendulum-v1"}), ("create_env", {"env_id": "os:CartPole-v1"}),
        ("create_env", {"env_kwargs": {"sutton_barto_reward": True}}), ("create_env", {"num_episodes": -1}))
    assert_tool_error(other, "env_not_allowed", "Pendulum-v1", "CartPole-v1")
    assert_tool_error(module, "invalid_argument", "module imports")
    assert_tool_error(kwargs, "invalid_argument", "--allow-env-kwargs")
    assert_tool_error(steps, "invalid_argument", "'num_episodes': Input should be greater than or equal to 0")
    assert len(srv.engine.instances()) == 1


# -- runs ------------------------------------------------------------------------------------------------

def test_run_tools_report_and_reset_the_run(door):
    srv = door(env_id="CartPole-v1", run_manager=True, num_episodes=5)
    reset, step, status, stats, new = call_tools(srv, ("reset_env", {"seed": 0}), ("step_env", {"action": 0}),
                                                 ("get_run_status", {}), ("get_run_statistics", {}),
                                                 ("reset_run", {}))
    assert reset.structured_content["run_progress"]["episode_num"] == 1
    assert step.structured_content["run_progress"]["step_num"] == 1
    status, stats = status.structured_content, stats.structured_content
    assert status["state"] == "running" and status["total_episodes"] == 5 and status["current_step"] == 1
    assert stats["run_id"] == status["run_id"] and stats["total_steps"] == 1 and stats["env_id"] == "CartPole-v1"
    assert new.structured_content["message"] == "Run reset successfully"
    assert new.structured_content["run_id"] != status["run_id"]


def test_a_completed_run_makes_reset_env_say_so_until_reset_run(door):
    srv = door(env_id="CartPole-v1", run_manager=True, num_episodes=1)
    results = call_tools(srv, ("reset_env", {"seed": 0}), ("reset_env", {}), ("reset_run", {}), ("reset_env", {}))
    assert_tool_error(results[1], "run_completed", "reset")
    assert not results[3].is_error


def test_run_tools_say_when_the_run_manager_is_off_as_rest_does(door):
    srv = door(**CARTPOLE)
    rest = srv.get("/run/status")
    results = call_tools(srv, ("get_run_status", {}), ("get_run_statistics", {}), ("reset_run", {}))
    for result in results:
        assert_tool_error(result, "run_manager_disabled", "run manager is off")
        assert result.structured_content == rest


# -- every tool against its declared schema; remedies in MCP's words -------------------------------------

def test_every_tool_answers_in_its_output_schema_and_fails_in_the_one_error_shape(door):
    srv = door(env_id="CartPole-v1", allow_env=("Pendulum-v1",), run_manager=True, num_episodes=3)
    nope = {"instance_id": "nope"}

    async def body(client):
        schemas = {t.name: t.output_schema for t in (await client.list_tools()).tools}
        made = await client.call_tool("create_env", {"env_id": "Pendulum-v1"})
        calls = {  # tool: (arguments that succeed, arguments that fail)
            "list_envs": ({}, {"verbose": True}),
            "reset_env": ({"seed": 1}, {"seed": -1}),
            "step_env": ({"action": 0}, {"action": 7}),
            "render_env": ({}, {"mode": "ansi"}),
            "sample_action": ({}, nope),
            "get_env_info": ({}, nope),
            "get_run_status": ({}, nope),
            "get_run_statistics": ({}, nope),
            "reset_run": ({}, nope),
            "close_env": ({}, nope),
            "delete_env": ({"instance_id": made.structured_content["instance_id"]}, {"instance_id": "default"}),
        }
        results = {"create_env": (made, await client.call_tool("create_env", {"env_id": "Acrobot-v1"}))}
        for name, (ok, bad) in calls.items():
            results[name] = (await client.call_tool(name, ok), await client.call_tool(name, bad))
        return schemas, results

    schemas, results = connect(srv, body)
    assert results.keys() == schemas.keys() == ENV_TOOLS | MORE_TOOLS
    for name, (ok, bad) in results.items():
        jsonschema.Draft202012Validator.check_schema(schemas[name])
        assert not ok.is_error, (name, text(ok))
        jsonschema.validate(ok.structured_content, schemas[name])
        # isError results are exempt from the output schema (clients skip the check): they share one shape.
        assert bad.is_error, name
        jsonschema.validate(bad.structured_content, FAILURE_SCHEMA)


def test_a_remedy_is_worded_with_mcp_tools(door, monkeypatch):
    srv = door(**CARTPOLE)

    async def unknown(instance_id):
        raise gymsite.errors.UnknownInstance(f"no instance {instance_id!r}")

    monkeypatch.setattr(srv.engine, "info", unknown)
    (result,) = call_tools(srv, ("get_env_info", {"instance_id": "x"}))
    assert result.structured_content == {"success": False, "code": "not_found",
                                         "error": "no instance 'x'; list_envs lists the live ones"}


def test_every_remedy_the_errors_name_has_mcp_words_naming_no_rest_route():
    def subclasses(cls):
        return {cls} | {s for sub in cls.__subclasses__() for s in subclasses(sub)}

    remedies = {cls.remedy for cls in subclasses(gymsite.errors.GymsiteError)} - {None}
    assert remedies <= MCP_REMEDIES.keys()
    assert not any(route in words for words in MCP_REMEDIES.values() for route in ("GET ", "POST ", "DELETE ", "/"))
