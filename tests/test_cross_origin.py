"""Cross-site requests: a browser on another site cannot change a (tokenless) server over REST."""

import pytest

from runs.ledger import ledger_stop

RUNS = {"env_id": "CartPole-v1", "run_manager": True, "num_episodes": 10, "max_steps_per_episode": 5}
FORM = {"content_type": "application/x-www-form-urlencoded"}


@pytest.fixture(autouse=True, scope="module")
def _ledger_writer_stopped():
    yield
    ledger_stop()


def assert_cross_origin(reply):
    assert reply.status == 403, (reply.status, reply.body)
    assert reply.body["success"] is False and reply.body["error"] and reply.body["code"] == "cross_origin", reply.body


@pytest.mark.parametrize("path", ["/reset", "/close", "/run/reset", "/run/pause", "/envs"])
def test_an_empty_form_post_from_a_foreign_origin_is_refused(serve, path):
    srv = serve(**RUNS)
    run_id = srv.get("/run/status").body["run_id"]
    reply = srv.post(path, raw=b"", headers={"Origin": "http://evil.example"}, **FORM)
    assert_cross_origin(reply)
    status = srv.get("/run/status").body
    assert status["run_id"] == run_id and status["state"] != "paused"
    assert srv.get("/health").body["instances"] == 1


def test_a_delete_from_a_foreign_origin_is_refused(serve):
    srv = serve(**RUNS)
    iid = srv.post("/envs", {}).body["instance_id"]
    assert_cross_origin(srv.request("DELETE", f"/envs/{iid}", headers={"Origin": "http://evil.example"}))
    assert srv.get(f"/envs/{iid}").status == 200


@pytest.mark.parametrize("headers", [
    {"Sec-Fetch-Site": "cross-site"},
    {"Origin": "null"},
    {"Origin": "http://127.0.0.1.evil.example"},
    {"Origin": "file://"},
])
def test_other_cross_site_marks_are_refused(serve, headers):
    srv = serve(**RUNS)
    assert_cross_origin(srv.post("/reset", {"seed": 1}, headers=headers))


def test_same_origin_and_allowed_host_origins_change_the_server(serve):
    srv = serve(**RUNS)
    port = srv.base.rsplit(":", 1)[1]
    for headers in ({"Origin": srv.base, "Sec-Fetch-Site": "same-origin"}, {"Origin": f"http://localhost:{port}"},
                    {"Host": f"localhost:{port}", "Origin": f"http://localhost:{port}"}, {}):
        reply = srv.post("/reset", {"seed": 1}, headers=headers)
        assert reply.status == 200, (headers, reply.body)


def test_an_origin_listed_in_csrf_trusted_origins_changes_the_server(serve, settings):
    srv = serve(**RUNS)
    settings.CSRF_TRUSTED_ORIGINS = ["https://dashboard.example"]
    assert srv.post("/reset", {"seed": 1}, headers={"Origin": "https://dashboard.example"}).status == 200
    assert_cross_origin(srv.post("/reset", {"seed": 1}, headers={"Origin": "https://other.example"}))


def test_reads_from_a_foreign_origin_still_answer(serve):
    srv = serve(**RUNS)
    assert srv.get("/run/status", headers={"Origin": "http://evil.example"}).status == 200
