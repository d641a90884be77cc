"""Every error answer, 5xx included, is the JSON error shape: never Django's HTML page."""

import pytest

from runs import selectors

RUNS = {"env_id": "CartPole-v1", "run_manager": True, "num_episodes": 2, "max_steps_per_episode": 5}


def assert_error(reply, status, code):
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["content-type"] == "application/json"
    assert reply.body["success"] is False and reply.body["error"] and reply.body["code"] == code, reply.body


@pytest.mark.parametrize("query", ["env_id=%00", "instance_id=%00", "env_id=Cart%00Pole-v1"])
def test_a_nul_byte_in_a_runs_filter_is_422(serve, query):
    srv = serve(**RUNS)
    assert_error(srv.get(f"/runs?{query}"), 422, "invalid_argument")


def test_runs_filters_without_nul_still_match(serve):
    srv = serve(**RUNS)
    srv.post("/reset", {"seed": 0})  # the run reaches the history with its first episode
    reply = srv.get("/runs?env_id=CartPole-v1&instance_id=default")
    assert reply.status == 200 and len(reply.body["runs"]) == 1


def test_an_unhandled_exception_in_an_api_operation_is_a_json_500(serve, monkeypatch):
    srv = serve(**RUNS)

    def broken(**filters):
        raise RuntimeError("a bug")

    monkeypatch.setattr(selectors, "run_list", broken)
    assert_error(srv.get("/runs"), 500, "internal_error")


def test_an_unhandled_exception_in_a_page_is_a_json_500(serve, monkeypatch):
    srv = serve(**RUNS)

    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(srv.engine, "instances", broken)
    assert_error(srv.get("/"), 500, "internal_error")


@pytest.mark.parametrize("path", ["/envs/%0A/step", "/envs/a%0Ab/step"])
def test_an_instance_id_with_a_newline_is_a_json_404(serve, path):
    srv = serve(env_id="CartPole-v1")
    assert_error(srv.post(path, {"action": 0}), 404, "not_found")
