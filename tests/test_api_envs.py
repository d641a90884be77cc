"""REST env routes end to end: the real ASGI app under uvicorn, plain HTTP, the real database."""

import base64

import gymnasium as gym
import numpy as np
import pytest

CARTPOLE = {"env_id": "CartPole-v1"}


def gym_reference(env_id, seed, actions, **kwargs):
    env = gym.make(env_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        out.append(env.step(a)[0])
    env.close()
    return [np.asarray(o).tolist() for o in out]


def assert_error(reply, status, code=None):
    assert reply.status == status, (reply.status, reply.body)
    assert reply.body["success"] is False and reply.body["error"], reply.body
    if code:
        assert reply.body["code"] == code, reply.body


def test_health_names_the_env_and_counts_instances(serve):
    srv = serve(**CARTPOLE)
    r = srv.get("/health")
    assert r.status == 200 and r.body == {"status": "healthy", "env_id": "CartPole-v1", "instances": 1}


def test_reset_and_steps_follow_gymnasium_exactly(serve):
    srv = serve(**CARTPOLE)
    ref = gym_reference("CartPole-v1", 7, [1, 0, 1])
    r = srv.post("/reset", {"seed": 7})
    assert r.status == 200 and r.body["done"] is False and "run_progress" not in r.body
    assert np.allclose(r.body["observation"], ref[0], atol=1e-7)
    for action, expected in zip([1, 0, 1], ref[1:], strict=True):
        r = srv.post("/step", {"action": action})
        assert r.status == 200 and r.body["reward"] == 1.0 and r.body["done"] is False
        assert np.allclose(r.body["observation"], expected, atol=1e-7)


def test_reset_takes_an_empty_post_too(serve):
    srv = serve(**CARTPOLE)
    assert srv.request("POST", "/reset").status == 200


@pytest.mark.parametrize("bad", [5, -1, "1", 1.0, 1.5, True, None, [0], {"a": 1}])
def test_it_refuses_actions_outside_the_space_and_leaves_the_env_as_it_was(serve, bad):
    srv = serve(**CARTPOLE)
    ref = gym_reference("CartPole-v1", 3, [1])
    srv.post("/reset", {"seed": 3})
    r = srv.post("/step", {"action": bad})
    assert_error(r, 422, "invalid_action")
    assert "Discrete(2)" in r.body["error"] and "0..1" in r.body["error"]
    ok = srv.post("/step", {"action": 1})
    assert np.allclose(ok.body["observation"], ref[1], atol=1e-7)


def test_a_step_without_an_action_says_the_field_is_required(serve):
    srv = serve(**CARTPOLE)
    srv.post("/reset", {})
    r = srv.post("/step", {})
    assert_error(r, 422, "invalid_argument")
    assert "'action' is required" in r.body["error"]


def test_unknown_fields_are_refused_by_name(serve):
    srv = serve(**CARTPOLE)
    r = srv.post("/reset", {"sed": 1})
    assert_error(r, 422)
    assert "'sed'" in r.body["error"]


@pytest.mark.parametrize("seed", ["5", 5.0, -1, True, 2**200])
def test_seeds_must_be_non_negative_integers(serve, seed):
    srv = serve(**CARTPOLE)
    assert_error(srv.post("/reset", {"seed": seed}), 422)


def test_step_and_render_before_the_first_reset_are_reset_required(serve):
    srv = serve(**CARTPOLE)
    assert_error(srv.post("/step", {"action": 0}), 409, "reset_required")
    assert_error(srv.post("/render", {}), 409, "reset_required")


def test_a_step_after_termination_is_episode_over_until_reset(serve):
    srv = serve(**CARTPOLE)
    srv.post("/reset", {"seed": 0})
    for _ in range(100):
        r = srv.post("/step", {"action": 0})
        if r.body["done"]:
            break
    assert r.body["terminated"] is True
    assert_error(srv.post("/step", {"action": 0}), 409, "episode_over")
    assert srv.post("/reset", {"seed": 0}).status == 200
    assert srv.post("/step", {"action": 0}).status == 200


def test_close_then_reset_recreates_the_env(serve):
    srv = serve(**CARTPOLE)
    srv.post("/reset", {"seed": 1})
    assert srv.post("/close").body == {"success": True, "status": "closed"}
    assert srv.engine.get("default").env is None
    assert_error(srv.post("/step", {"action": 0}), 409, "reset_required")
    assert srv.post("/reset", {"seed": 1}).status == 200
    assert srv.post("/step", {"action": 0}).status == 200


def test_render_gives_a_png_of_the_frame(serve):
    srv = serve(**CARTPOLE)
    srv.post("/reset", {"seed": 1})
    r = srv.post("/render", {"mode": "rgb_array"})
    assert r.status == 200 and r.body["type"] == "image_base64" and r.body["format"] == "png"
    assert r.body["shape"] == [400, 600, 3]
    assert base64.b64decode(r.body["render"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_render_in_a_mode_the_instance_lacks_says_how_to_get_it(serve):
    srv = serve(**CARTPOLE)
    srv.post("/reset", {})
    r = srv.post("/render", {"mode": "ansi"})
    assert_error(r, 422)
    assert "rgb_array" in r.body["error"]


def test_ansi_instances_render_text(serve):
    srv = serve(env_id="FrozenLake-v1", render_mode="ansi")
    srv.post("/reset", {"seed": 0})
    r = srv.post("/render", {})
    assert r.status == 200 and r.body["type"] == "text" and "F" in r.body["render"]


def test_an_env_without_render_modes_gets_none_and_render_explains(serve):
    srv = serve(env_id="ExplodingToy-v0")
    assert srv.get("/info").body["env_info"]["render_mode"] is None
    srv.post("/reset", {})
    assert "no render mode" in srv.post("/render", {}).body["error"]


def test_info_describes_the_spaces_in_strict_json(serve):
    srv = serve(**CARTPOLE)
    info = srv.get("/info").body["env_info"]
    assert info["id"] == "CartPole-v1" and info["instance_id"] == "default"
    assert info["action_space"] == {"type": "Discrete", "n": 2, "start": 0, "repr": "Discrete(2)"}
    assert info["observation_space"]["low"][1] == "-inf"
    assert info["action_schema"]["type"] == "integer"
    assert info["max_episode_steps"] == 500 and info["reward_threshold"] == 475.0
    assert info["render_modes"] == ["human", "rgb_array"] and info["render_mode"] == "rgb_array"
    assert "pole" in info["description"].lower() and "Version History" not in info["description"]


def test_sample_gives_a_valid_action(serve):
    srv = serve(**CARTPOLE)
    assert all(srv.get("/sample").body["action"] in (0, 1) for _ in range(5))


def test_dict_actions_and_non_finite_observations_travel_as_strict_json(serve):
    srv = serve(env_id="DictToy-v0")
    r = srv.post("/reset", {})
    assert r.status == 200 and r.body["observation"] == [0.0, None]
    r = srv.post("/step", {"action": {"move": 2, "force": [0.5, -0.5]}})
    assert r.status == 200 and r.body["observation"] == [2.0, 0.5] and r.body["terminated"] is True
    srv.post("/reset", {})
    assert_error(srv.post("/step", {"action": {"move": 2}}), 422, "invalid_action")
    assert_error(srv.post("/step", {"action": {"move": 3, "force": [0, 0]}}), 422, "invalid_action")


def test_a_body_that_is_not_declared_json_is_415_and_changes_nothing(serve):
    srv = serve(**CARTPOLE)
    ref = gym_reference("CartPole-v1", 5, [1, 0])
    srv.post("/reset", {"seed": 5})
    srv.post("/step", {"action": 1})
    assert_error(srv.post("/reset", raw=b'{"seed": 9}', content_type="text/plain"), 415)
    assert_error(srv.post("/close", raw=b"x=1", content_type="application/x-www-form-urlencoded"), 415)
    r = srv.post("/step", {"action": 0})
    assert np.allclose(r.body["observation"], ref[2], atol=1e-7)


@pytest.mark.parametrize("raw", [b'{"action": ', b'{"action": NaN}', b'{"action": Infinity}'])
def test_malformed_or_non_strict_json_is_400(serve, raw):
    srv = serve(**CARTPOLE)
    assert_error(srv.post("/step", raw=raw), 400, "bad_request")


def test_an_oversized_body_is_413_and_the_server_lives_on(serve):
    srv = serve(**CARTPOLE)
    assert_error(srv.post("/step", raw=b'{"action": [' + b"1," * 2_000_000 + b"1]}"), 413, "payload_too_large")
    assert srv.get("/health").status == 200


def test_unknown_instances_and_routes_are_json_404s(serve):
    srv = serve(**CARTPOLE)
    assert_error(srv.post("/envs/nope/step", {"action": 0}), 404, "not_found")
    assert_error(srv.get("/no/such/route"), 404, "not_found")


def test_instances_have_their_own_episodes(serve):
    srv = serve(env_id="CartPole-v1", allow_env=("Pendulum-v1",))
    made = srv.post("/envs", {"env_id": "Pendulum-v1"})
    assert made.status == 201 and made.body["env_id"] == "Pendulum-v1"
    pid = made.body["instance_id"]
    ref = gym_reference("Pendulum-v1", 0, [np.array([0.5], np.float32)])
    srv.post(f"/envs/{pid}/reset", {"seed": 0})
    srv.post("/reset", {"seed": 1})
    r = srv.post(f"/envs/{pid}/step", {"action": [0.5]})
    assert np.allclose(r.body["observation"], ref[1], atol=1e-6)
    assert {i["instance_id"] for i in srv.get("/envs").body["instances"]} == {"default", pid}
    assert srv.request("DELETE", f"/envs/{pid}").body["status"] == "deleted"
    assert_error(srv.post(f"/envs/{pid}/reset", {}), 404)


@pytest.mark.parametrize("env_id, status", [("MountainCar-v0", 403), ("os:system", 422),
                                             ("gymnasium.envs:CartPoleEnv", 422), (7, 422)])
def test_only_the_operators_env_ids_can_be_opened(serve, env_id, status):
    srv = serve(**CARTPOLE)
    assert_error(srv.post("/envs", {"env_id": env_id}), status)
    assert len(srv.engine.instances()) == 1


def test_client_env_kwargs_need_the_operators_consent_and_stay_small(serve):
    srv = serve(env_id="FrozenLake-v1", render_mode="ansi")
    assert_error(srv.post("/envs", {"env_kwargs": {"map_name": "8x8"}}), 422)
    srv = serve(env_id="FrozenLake-v1", allow_env_kwargs=True, max_env_kwargs_bytes=100)
    r = srv.post("/envs", {"env_kwargs": {"map_name": "8x8"}})
    assert r.status == 201
    obs_space = srv.get(f"/envs/{r.body['instance_id']}").body["env_info"]["observation_space"]
    assert obs_space["n"] == 64
    assert_error(srv.post("/envs", {"env_kwargs": {"render_mode": "human"}}), 422)
    assert_error(srv.post("/envs", {"env_kwargs": {"desc": ["S" * 200]}}), 422)
    assert_error(srv.post("/envs", {"env_kwargs": {"no_such_kwarg": 1}}), 422)


def test_human_render_mode_is_never_opened_for_a_client(serve):
    srv = serve(**CARTPOLE)
    assert_error(srv.post("/envs", {"render_mode": "human"}), 422)


def test_the_instance_limit_is_429(serve):
    srv = serve(env_id="CartPole-v1", max_instances=2)
    assert srv.post("/envs", {}).status == 201
    assert_error(srv.post("/envs", {}), 429, "too_many_instances")


def test_the_default_instance_cannot_be_deleted(serve):
    srv = serve(**CARTPOLE)
    assert_error(srv.request("DELETE", "/envs/default"), 409)


def test_idle_client_instances_are_closed_but_not_the_default(serve):
    srv = serve(env_id="CartPole-v1", idle_timeout=60)
    iid = srv.post("/envs", {}).body["instance_id"]
    last_used = srv.engine.get(iid).last_used_at
    assert srv.engine.reap_idle(now=last_used + 59) == []
    assert srv.engine.reap_idle(now=last_used + 61) == [iid]
    assert [i["instance_id"] for i in srv.get("/envs").body["instances"]] == ["default"]


def test_an_env_that_raises_is_a_500_with_its_message_and_the_server_lives_on(serve):
    srv = serve(env_id="ExplodingToy-v0")
    srv.post("/reset", {})
    r = srv.post("/step", {"action": 0})
    assert r.status == 200 and r.body["info"] == {"note": None}
    r = srv.post("/step", {"action": 0})
    assert_error(r, 500, "env_error")
    assert "the physics engine diverged" in r.body["error"]
    assert_error(srv.post("/step", {"action": 0}), 409, "reset_required")
    assert srv.get("/health").status == 200


def test_a_token_guards_every_route_but_health(serve):
    srv = serve(token="s3cret", **CARTPOLE)
    assert srv.get("/health").status == 200
    assert_error(srv.get("/info"), 401, "unauthorized")
    assert_error(srv.get("/info", headers={"Authorization": "Bearer wrong"}), 401)
    assert srv.get("/info", headers={"Authorization": "Bearer s3cret"}).status == 200
    assert srv.get("/admin/login/").status == 401


def test_a_foreign_host_header_is_400(serve):
    srv = serve(**CARTPOLE)
    assert_error(srv.get("/info", headers={"Host": "evil.example"}), 400, "bad_host")


def test_openapi_lists_every_route_and_swagger_works_offline(serve):
    srv = serve(**CARTPOLE)
    paths = srv.get("/openapi.json").body["paths"]
    for path in ("/reset", "/step", "/render", "/info", "/sample", "/close", "/envs", "/envs/{instance_id}",
                 "/envs/{instance_id}/step", "/health"):
        assert path in paths, path
    docs = srv.client.get(srv.base + "/docs").text
    assert "swagger" in docs.lower() and "cdn." not in docs
    assert srv.client.get(srv.base + "/static/ninja/swagger-ui-bundle.js").status_code == 200


def test_the_admin_is_styled_and_the_home_page_says_what_is_served(serve):
    srv = serve(**CARTPOLE)
    assert srv.client.get(srv.base + "/static/admin/css/base.css").status_code == 200
    home = srv.client.get(srv.base + "/").text
    assert "CartPole-v1" in home and "/mcp" in home and "/docs" in home


def test_a_chunked_body_past_the_limit_is_413_without_being_held_in_memory(serve):
    srv = serve(**CARTPOLE)

    def chunks():
        yield b'{"action": ['
        for _ in range(300):
            yield b"1," * 5000  # ~3 MB in all, past the 2 MiB limit, with no Content-Length
        yield b"1]}"

    r = srv.client.post(srv.base + "/step", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert srv.get("/health").status == 200


@pytest.mark.parametrize("seed", [2**63, 2**64 + 1, 2**128 - 1])
def test_a_seed_past_64_bits_is_read_as_the_integer_it_is(serve, seed):
    srv = serve(**CARTPOLE)
    env = gym.make("CartPole-v1")
    expected = env.reset(seed=seed)[0].tolist()
    r = srv.post("/reset", raw=b'{"seed": %d}' % seed)
    assert r.status == 200 and np.allclose(r.body["observation"], expected, atol=1e-7)
    assert_error(srv.post("/reset", raw=b'{"seed": %d}' % 2**128), 422, "invalid_argument")


def test_a_number_too_large_for_a_float_is_refused_as_before(serve):
    srv = serve(**CARTPOLE)
    srv.post("/reset", {"seed": 1})
    assert_error(srv.post("/step", raw=b'{"action": 1e400}'), 422, "invalid_action")
