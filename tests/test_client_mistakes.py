"""Client mistakes stay the client's: refused reset options, path-like env_kwargs, a full server."""

import pytest

from tests.conftest import free_port

PATHS = "/etc/shadow"


def test_reset_options_the_env_refuses_are_a_422_naming_them_and_the_run_goes_on(serve):
    srv = serve(env_id="CartPole-v1", run_manager=True, num_episodes=3)
    r = srv.post("/reset", {"options": {"low": "x"}})
    assert r.status == 422 and r.body["code"] == "invalid_argument", r.body
    assert "'low': 'x'" in r.body["error"] and "CartPole-v1 refused the reset options" in r.body["error"]
    assert srv.get("/run/status").body["state"] == "running"
    assert srv.post("/step", {"action": 0}).body["code"] == "reset_required"
    assert srv.post("/reset", {"seed": 1}).status == 200
    assert srv.post("/step", {"action": 0}).status == 200


def test_an_env_that_raises_without_client_options_is_still_the_envs_error(serve):
    srv = serve(env_id="ExplodingToy-v0", run_manager=True)
    srv.post("/reset", {})
    srv.post("/step", {"action": 0})
    r = srv.post("/step", {"action": 0})  # the toy's physics diverge on its second step
    assert r.status == 500 and r.body["code"] == "env_error"


@pytest.mark.parametrize("kwargs", [{"xml_file": PATHS}, {"map_name": PATHS}, {"desc": ["~/x"]},
                                    {"entry_point": "os:system"}])
def test_client_env_kwargs_never_name_a_file_or_module(serve, kwargs):
    srv = serve(env_id="FrozenLake-v1", allow_env_kwargs=True)
    r = srv.post("/envs", {"env_kwargs": kwargs})
    assert r.status == 422 and r.body["code"] == "invalid_argument", r.body
    assert len(srv.engine.instances()) == 1


def test_keys_the_operator_lists_may_name_files(serve, tmp_path):
    srv = serve(env_id="FrozenLake-v1", allow_env_kwargs=True, env_kwargs_keys=("map_file",))
    r = srv.post("/envs", {"env_kwargs": {"map_file": str(tmp_path / "map.txt")}})
    # FrozenLake has no map_file argument: the policy let it through, gymnasium refused it.
    assert r.status == 422 and "map_file" in r.body["error"] and "names a file" not in r.body["error"]


def test_at_the_limit_429_says_when_to_retry_and_evict_idle_makes_room(serve):
    full = serve(env_id="CartPole-v1", max_instances=2)
    assert full.post("/envs", {}).status == 201
    refused = full.post("/envs", {})
    assert refused.status == 429 and refused.headers["retry-after"].isdigit()

    srv = serve(env_id="CartPole-v1", max_instances=2, evict_idle=True)
    first = srv.post("/envs", {}).body["instance_id"]
    second = srv.post("/envs", {})
    assert second.status == 201
    listed = {i["instance_id"] for i in srv.get("/envs").body["instances"]}
    assert listed == {"default", second.body["instance_id"]} and first not in listed


def test_an_allowed_env_that_cannot_be_made_ends_start_up_in_one_line(spawn):
    server = spawn(["--env", "CartPole-v1", "--import", "tests.toy_envs",
                    "--allow-env", "tests.toy_envs:MissingDependencyToy-v0"], wait=False)
    assert server.proc.wait(timeout=60) != 0
    lines = [line for line in server.log().splitlines() if line.strip()]
    assert "Traceback" not in server.log(), server.log()
    assert lines[-1].startswith("CommandError: --allow-env") and "cannot make it" in lines[-1], lines[-1]


def test_listing_env_kwargs_keys_without_allowing_env_kwargs_is_refused_at_start():
    from gymsite import serving

    with pytest.raises(serving.ConfigError, match="--allow-env-kwargs"):
        serving.ServerConfig(env_id="CartPole-v1", env_kwargs_keys=("xml_file",), port=free_port()).check()
