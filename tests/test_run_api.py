"""The run routes end to end: the real ASGI app under uvicorn, plain HTTP, the real database."""

import json

import pytest

from runs.ledger import ledger_stop
from runs.schemas import RunListOut, RunResetOut, RunStatisticsOut, RunStatusOut, StepListOut

SMALL = {"env_id": "CartPole-v1", "run_manager": True, "num_episodes": 2, "max_steps_per_episode": 3}


@pytest.fixture(autouse=True, scope="module")
def _ledger_writer_stopped():
    yield
    ledger_stop()


def assert_error(reply, status, code):
    assert reply.status == status, (reply.status, reply.body)
    assert reply.body["success"] is False and reply.body["error"] and reply.body["code"] == code, reply.body


def play(srv, steps, prefix=""):
    for _ in range(steps):
        r = srv.post(f"{prefix}/step", {"action": 1})
        assert r.status == 200, r.body
    return r


def test_status_and_statistics_answer_for_the_default_instance_and_its_twin(serve):
    srv = serve(**SMALL)
    srv.post("/reset", {"seed": 0})
    play(srv, 2)
    status = srv.get("/run/status")
    assert status.status == 200 and RunStatusOut.model_validate(status.body)
    assert status.body["current_step"] == 2 and status.body["success"] is True
    assert srv.get("/envs/default/run/status").body == status.body
    stats = srv.get("/run/statistics")
    assert stats.status == 200 and RunStatisticsOut.model_validate(stats.body)
    assert stats.body["episodes"][0]["total_steps"] == 2 and stats.body["total_steps"] == 2


def test_a_client_instance_has_its_own_run(serve):
    srv = serve(**SMALL)
    created = srv.post("/envs", {"max_steps_per_episode": 2})
    iid = created.body["instance_id"]
    srv.post(f"/envs/{iid}/reset", {"seed": 1})
    r = play(srv, 2, prefix=f"/envs/{iid}")
    assert r.body["truncated"] is True
    mine = srv.get(f"/envs/{iid}/run/statistics").body
    assert mine["instance_id"] == iid and mine["max_steps_per_episode"] == 2 and mine["completed_episodes"] == 1
    assert srv.get("/run/status").body["completed_episodes"] == 0


def test_pause_resume_start_and_reset_drive_the_run(serve):
    srv = serve(**SMALL)
    srv.post("/reset", {"seed": 0})
    assert srv.post("/run/pause").body["state"] == "paused"
    assert_error(srv.post("/step", {"action": 0}), 409, "run_paused")
    assert_error(srv.post("/reset", {"seed": 0}), 409, "run_paused")
    assert srv.post("/run/resume").body["state"] == "running"
    assert srv.post("/run/pause").status == 200
    assert srv.post("/run/start").body["state"] == "running"  # start resumes a paused run
    old = srv.get("/run/status").body["run_id"]
    reset = srv.post("/envs/default/run/reset")
    assert reset.status == 200 and RunResetOut.model_validate(reset.body) and reset.body["run_id"] != old
    old_run = srv.get(f"/runs/{old}").body
    assert (old_run["state"], old_run["reason"]) == ("stopped", "reset by client before it completed")


def test_a_completed_run_refuses_pause_until_a_new_one_starts(serve):
    srv = serve(**SMALL)
    for seed in (0, 1):
        srv.post("/reset", {"seed": seed})
        play(srv, 3)
    assert srv.get("/run/status").body["state"] == "completed"
    assert_error(srv.post("/run/pause"), 409, "run_completed")
    started = srv.post("/run/start")
    assert started.status == 200 and started.body["state"] == "running" and started.body["completed_episodes"] == 0


def test_run_routes_of_an_unknown_instance_are_not_found(serve):
    srv = serve(**SMALL)
    assert_error(srv.get("/envs/nope/run/status"), 404, "not_found")
    assert_error(srv.post("/envs/nope/run/reset"), 404, "not_found")


def test_run_routes_say_when_the_run_manager_is_off(serve):
    srv = serve(env_id="CartPole-v1", run_manager=False)
    for method, path in (("GET", "/run/status"), ("GET", "/run/statistics"), ("POST", "/run/reset"),
                         ("POST", "/run/start"), ("POST", "/run/pause"), ("POST", "/run/resume")):
        assert_error(srv.request(method, path), 404, "run_manager_disabled")


def test_run_history_is_paginated_newest_first_and_filtered(serve):
    srv = serve(**SMALL)
    ids = []
    for n in range(4):
        ids.append(srv.post("/reset", {"seed": n}).body["run_progress"]["run_id"])
        if n < 3:
            srv.post("/run/reset")
    srv.post("/run/reset")  # a run with no episode: not in the history
    page = srv.get("/runs?page=1&page_size=2")
    assert page.status == 200 and RunListOut.model_validate(page.body)
    assert [r["run_id"] for r in page.body["runs"]] == ids[::-1][:2]
    assert (page.body["count"], page.body["num_pages"]) == (4, 2)
    stopped = srv.get("/runs?state=stopped&env_id=CartPole-v1").body
    assert [r["run_id"] for r in stopped["runs"]] == ids[::-1]
    assert srv.get("/runs?env_id=Taxi-v4").body["count"] == 0
    assert_error(srv.get("/runs?state=bogus"), 422, "invalid_argument")
    assert_error(srv.get("/runs?page=0"), 422, "invalid_argument")
    assert_error(srv.get("/runs?page_size=100000"), 422, "invalid_argument")


def test_a_live_runs_detail_includes_its_open_episode(serve):
    srv = serve(**SMALL)
    srv.post("/reset", {"seed": 0})
    play(srv, 2)
    run_id = srv.get("/run/status").body["run_id"]
    detail = srv.get(f"/runs/{run_id}")
    assert detail.status == 200 and RunStatisticsOut.model_validate(detail.body)
    assert detail.body == {**srv.get("/run/statistics").body, "duration": detail.body["duration"],
                           "episodes": detail.body["episodes"]}
    assert detail.body["episodes"][0]["total_steps"] == 2


@pytest.mark.parametrize("run_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_an_unknown_or_malformed_run_is_not_found_everywhere(serve, run_id):
    srv = serve(**SMALL)
    for path in (f"/runs/{run_id}", f"/runs/{run_id}/episodes/1/steps", f"/runs/{run_id}/export.jsonl"):
        assert_error(srv.get(path), 404, "not_found")


def test_an_episodes_steps_are_served_page_by_page(serve):
    srv = serve(**SMALL)
    srv.post("/reset", {"seed": 0})
    play(srv, 3)
    run_id = srv.get("/run/status").body["run_id"]
    page = srv.get(f"/runs/{run_id}/episodes/1/steps?page=2&page_size=2")
    assert page.status == 200 and StepListOut.model_validate(page.body)
    assert [s["step_num"] for s in page.body["steps"]] == [3] and page.body["count"] == 3
    assert page.body["steps"][0]["action"] == 1 and len(page.body["steps"][0]["observation"]) == 4
    assert_error(srv.get(f"/runs/{run_id}/episodes/9/steps"), 404, "not_found")


def test_the_export_streams_json_lines(serve):
    srv = serve(**SMALL)
    srv.post("/reset", {"seed": 0})
    play(srv, 3)
    srv.post("/reset", {"seed": 1})
    play(srv, 1)
    run_id = srv.get("/run/status").body["run_id"]
    with srv.client.stream("GET", f"{srv.base}/runs/{run_id}/export.jsonl") as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
        assert "content-length" not in r.headers  # streamed, not built whole
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert [(x["type"], x.get("step_num")) for x in lines] == [
        ("run", None), ("episode", None), ("step", 1), ("step", 2), ("step", 3), ("episode", None), ("step", 1)]
    assert lines[0]["run_id"] == run_id and lines[1]["seed"] == 0 and lines[5]["total_steps"] == 1


@pytest.mark.django_db  # the stream closes its thread's connection when done
def test_the_export_response_is_async_pulls_lines_batch_by_batch_and_closes_its_generator():
    import asyncio

    from runs.api import JSONLinesResponse

    pulled, closed = [], []

    def lines():
        try:
            for i in range(5 * JSONLinesResponse.batch):
                pulled.append(i)
                yield b"{}\n"
        finally:
            closed.append(True)

    async def first_chunk(response):
        chunks = aiter(response)  # as Django's ASGI handler reads it; a sync iterator would warn here
        try:
            return await anext(chunks)
        finally:
            await chunks.aclose()

    response = JSONLinesResponse(lines())
    chunk = asyncio.run(first_chunk(response))  # it ends by closing what the stream left open
    assert response.is_async and chunk == b"{}\n" * JSONLinesResponse.batch
    assert len(pulled) <= JSONLinesResponse.batch + 1  # Django alone would have read all 1000 first
    assert closed
