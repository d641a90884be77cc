"""Two gymsite apps in one process: each serves its own engine on both doors, REST and MCP."""

from tests.test_mcp_transport import call_tools


def test_two_apps_in_one_process_each_serve_their_own_engine_on_rest_and_mcp(serve):
    cartpole, pendulum = serve(env_id="CartPole-v1"), serve(env_id="Pendulum-v1")
    own = {"CartPole-v1": cartpole.post("/envs", {}).body["instance_id"],
           "Pendulum-v1": pendulum.post("/envs", {}).body["instance_id"]}
    # Only CartPole's default instance is reset (over REST): a step on Pendulum's must find no episode.
    assert cartpole.post("/reset", {"seed": 3}).status == 200
    assert cartpole.post("/step", {"action": 1}).body["success"] is True

    for srv, env_id, other in [(cartpole, "CartPole-v1", "Pendulum-v1"), (pendulum, "Pendulum-v1", "CartPole-v1")]:
        assert srv.get("/health").body == {"status": "healthy", "env_id": env_id, "instances": 2}
        assert srv.get("/info").body["env_info"]["id"] == env_id
        rest_listed = {i["instance_id"]: i["env_id"] for i in srv.get("/envs").body["instances"]}
        assert rest_listed == {"default": env_id, own[env_id]: env_id}

        info, listed, step = call_tools(srv, ("get_env_info", {}), ("list_envs", {}),
                                        ("step_env", {"action": 0 if env_id == "CartPole-v1" else [0.0]}))
        assert info.structured_content["env_info"]["id"] == env_id
        mcp_listed = {i["instance_id"]: i["env_id"] for i in listed.structured_content["instances"]}
        assert mcp_listed == rest_listed and own[other] not in mcp_listed
        if env_id == "CartPole-v1":
            assert not step.is_error, step.content  # the episode REST started on this server's engine
        else:
            assert step.is_error and step.structured_content["code"] == "reset_required", step.content

    reset = pendulum.post("/reset", {"seed": 3})
    assert reset.status == 200 and len(reset.body["observation"]) == 3
    assert pendulum.post("/step", {"action": [0.5]}).status == 200
    assert cartpole.post("/step", {"action": [0.5]}).status == 422  # still CartPole's Discrete(2)
