"""The REST door keeps the promises of its own OpenAPI: every operation, on success and on error,
answers a status the OpenAPI lists for it with a body its schema for that status accepts.

Most of it runs in memory (Ninja's test clients on an engine from the composition root); what
only the ASGI app and its middleware answer (Host, token, content type, body size, 405) runs over
the live `serve` fixture.
"""

import uuid
from collections.abc import Callable

import pytest
from django.conf import settings

from gymsite import serving
from gymsite.api import api
from tests.rest_memory import Contract, MemoryREST, Operation
from tests.toy_envs import BlockingEnv

CONTRACT = Contract(api.get_openapi_schema())
OPERATIONS = CONTRACT.operations()
# Nothing a client sends can make these fail in the view: their errors are the doors' own
# (foreign Host, missing token), which test_the_doors_refusals_are_documented_on_every_operation shows.
FAIL_ONLY_AT_THE_DOOR = {Operation("GET", "/health"), Operation("GET", "/envs"), Operation("GET", "/info")}
NDJSON = "application/x-ndjson"


@pytest.fixture
def rest(transactional_db):
    """Makes in-memory REST clients, each on its own engine built through the composition root
    (run manager on unless asked otherwise); shuts each engine down after the test."""
    made = []

    def start(**options) -> MemoryREST:
        config = serving.resolve(serving.ServerConfig(**{"env_id": "CartPole-v1", **options}))
        made.append(MemoryREST(serving.build_engine(config), config))
        return made[-1]

    yield start
    for client in made:
        client.close()


# -- one scenario per operation: (expected status, reply) pairs, successes and errors -----------------

Scenario = Callable[[Callable[..., MemoryREST], Operation], list]
SCENARIOS: dict[Operation, Scenario] = {}


def scenario(*operations: str):
    def register(fn: Scenario) -> Scenario:
        for text in operations:
            method, path = text.split(" ", 1)
            SCENARIOS[Operation(method, path)] = fn
        return fn

    return register


def on_instance(srv: MemoryREST, op: Operation) -> str:
    """The operation's URL on a live instance: the default one, or one opened for a per-instance route."""
    if "{instance_id}" not in op.path:
        return op.path
    made = srv.post("/envs", {})
    assert made.status == 201, made.body
    return op.path.replace("{instance_id}", made.body["instance_id"])


def unknown_instance(srv: MemoryREST, op: Operation, body=None) -> list:
    """404 for a well-formed call on an instance that does not exist (per-instance routes only)."""
    if "{instance_id}" not in op.path:
        return []
    return [(404, srv.request(op.method, op.path.replace("{instance_id}", "no-such-instance"), body))]


def behind_a_hung_step(rest, op: Operation) -> list:
    """504: the env does not answer within the server's bound; calls queued behind the slow step
    time out too. Waits (bounded) for the owner thread to drain before the test ends."""
    BlockingEnv.release.clear()  # another test may have left its steps released
    srv = rest(env_id="BlockingToy-v0", call_timeout=0.1, run_manager=False)
    url = on_instance(srv, op)
    assert srv.post(_sibling(url, "reset"), {}).status == 200
    try:
        replies = [(504, srv.post(_sibling(url, "step"), {"action": 0})), (504, srv.request(op.method, url))]
    finally:
        BlockingEnv.release.set()
    instance_id = url.split("/")[2] if url.startswith("/envs/") else "default"
    srv.engine.get(instance_id).submit(lambda: None).result(timeout=10)
    return replies


def _sibling(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name if url.startswith("/envs/") else "/" + name


@scenario("POST /reset", "POST /envs/{instance_id}/reset")
def reset_scenario(rest, op):
    srv = rest()
    url = on_instance(srv, op)
    return [(200, srv.post(url, {"seed": 1})), (200, srv.request("POST", url)),
            (422, srv.post(url, {"seed": "one"})), (422, srv.post(url, {"seed": 1, "colour": "red"})),
            (400, srv.post(url, raw=b"{")), (400, srv.post(url, raw=b'{"seed": NaN}')),
            *unknown_instance(srv, op)]


@scenario("POST /step", "POST /envs/{instance_id}/step")
def step_scenario(rest, op):
    srv = rest()
    url = on_instance(srv, op)
    before = srv.post(url, {"action": 0})
    srv.post(_sibling(url, "reset"), {"seed": 1})
    return [(409, before), (200, srv.post(url, {"action": 0})), (422, srv.post(url, {"action": 2})),
            (422, srv.post(url, {"action": "1"})), (422, srv.post(url, {})), *unknown_instance(srv, op, {"action": 0})]


@scenario("POST /render", "POST /envs/{instance_id}/render")
def render_scenario(rest, op):
    srv = rest()
    url = on_instance(srv, op)
    before = srv.post(url, {})
    srv.post(_sibling(url, "reset"), {"seed": 1})
    return [(409, before), (200, srv.post(url, {})), (200, srv.post(url, {"mode": "rgb_array"})),
            (422, srv.post(url, {"mode": "human"})), *unknown_instance(srv, op)]


@scenario("POST /close", "POST /envs/{instance_id}/close")
def close_scenario(rest, op):
    srv = rest()
    url = on_instance(srv, op)
    return [(200, srv.post(url)), (200, srv.post(url)), *unknown_instance(srv, op), *behind_a_hung_step(rest, op)]


@scenario("GET /sample", "GET /envs/{instance_id}/sample")
def sample_scenario(rest, op):
    srv = rest()
    url = on_instance(srv, op)
    sampled = srv.get(url)
    srv.post(_sibling(url, "close"))
    return [(200, sampled), (409, srv.get(url)), *unknown_instance(srv, op)]


@scenario("GET /info", "GET /envs/{instance_id}")
def info_scenario(rest, op):
    srv = rest()
    url = on_instance(srv, op)
    return [(200, srv.get(url)), *unknown_instance(srv, op)]


@scenario("GET /health")
def health_scenario(rest, op):
    return [(200, rest().get("/health"))]


@scenario("GET /envs")
def list_scenario(rest, op):
    srv = rest()
    srv.post("/envs", {})
    return [(200, srv.get("/envs"))]


@scenario("POST /envs")
def create_scenario(rest, op):
    srv = rest(max_instances=2)
    return [(201, srv.post("/envs", {"num_episodes": 3})), (403, srv.post("/envs", {"env_id": "Pendulum-v1"})),
            (422, srv.post("/envs", {"env_kwargs": {"sutton_barto_reward": True}})),
            (422, srv.post("/envs", {"num_episodes": -1})), (422, srv.post("/envs", {"colour": "red"})),
            (422, srv.post("/envs", {"fork_from": {"run_id": str(uuid.uuid4()), "episode_num": 0, "step_num": 0}})),
            (404, srv.post("/envs", {"resume_run": str(uuid.uuid4())})),
            (400, srv.post("/envs", raw=b"[")), (429, srv.post("/envs", {}))]


@scenario("DELETE /envs/{instance_id}")
def delete_scenario(rest, op):
    srv = rest()
    url = on_instance(srv, op)
    return [(200, srv.delete(url)), (404, srv.delete(url)), (409, srv.delete("/envs/default"))]


def completed_run(rest, op: Operation) -> tuple[MemoryREST, str]:
    """A server whose runs are one one-step episode, and the operation's URL on an instance whose
    run has just completed."""
    srv = rest(num_episodes=1, max_steps_per_episode=1)
    url = on_instance(srv, op)
    base = url.split("/run/")[0]
    assert srv.post(base + "/reset", {"seed": 1}).status == 200
    assert srv.post(base + "/step", {"action": 0}).body["done"] is True
    return srv, url


def run_tracking_off(rest, op: Operation) -> list:
    srv = rest(run_manager=False)
    return [(404, srv.request(op.method, on_instance(srv, op)))]


@scenario("GET /run/status", "GET /envs/{instance_id}/run/status",
          "GET /run/statistics", "GET /envs/{instance_id}/run/statistics",
          "POST /run/reset", "POST /envs/{instance_id}/run/reset",
          "POST /run/start", "POST /envs/{instance_id}/run/start")
def run_scenario(rest, op):
    srv, url = completed_run(rest, op)
    return [(200, srv.request(op.method, url)), *unknown_instance(srv, op), *run_tracking_off(rest, op)]


@scenario("POST /run/pause", "POST /envs/{instance_id}/run/pause",
          "POST /run/resume", "POST /envs/{instance_id}/run/resume")
def pause_resume_scenario(rest, op):
    srv = rest()
    url = on_instance(srv, op)
    base = url.split("/run/")[0]
    replies = [(200, srv.post(base + "/run/pause")), (200, srv.request(op.method, url))]
    ended, ended_url = completed_run(rest, op)
    return [*replies, (409, ended.request(op.method, ended_url)), *unknown_instance(srv, op),
            *run_tracking_off(rest, op)]


def recorded_run(rest) -> tuple[MemoryREST, str]:
    srv = rest()
    srv.post("/reset", {"seed": 1})
    srv.post("/step", {"action": 1})
    return srv, srv.get("/run/status").body["run_id"]


@scenario("GET /runs")
def run_list_scenario(rest, op):
    srv, _ = recorded_run(rest)
    return [(200, srv.get("/runs")), (200, srv.get("/runs?state=running&page_size=1")),
            (422, srv.get("/runs?page=0")), (422, srv.get("/runs?state=sleeping"))]


@scenario("GET /runs/{run_id}")
def run_detail_scenario(rest, op):
    srv, run_id = recorded_run(rest)
    live = srv.get(f"/runs/{run_id}")
    srv.post("/run/reset")  # the run is history now, not the live one
    fresh = srv.get("/run/status").body["run_id"]  # no episode yet: not in the history
    return [(200, live), (200, srv.get(f"/runs/{run_id}")), (404, srv.get(f"/runs/{fresh}")),
            (404, srv.get(f"/runs/{uuid.uuid4()}")), (404, srv.get("/runs/not-a-uuid"))]


@scenario("POST /runs/{run_id}/verify")
def verify_scenario(rest, op):
    srv, run_id = recorded_run(rest)
    return [(200, srv.post(f"/runs/{run_id}/verify", {"episode_num": 1})),
            (404, srv.post(f"/runs/{run_id}/verify", {"episode_num": 2})),
            (404, srv.post(f"/runs/{uuid.uuid4()}/verify", {"episode_num": 1})),
            (422, srv.post(f"/runs/{run_id}/verify", {"episode_num": "1"})),
            (400, srv.post(f"/runs/{run_id}/verify", raw=b"{"))]


@scenario("GET /runs/{run_id}/episodes/{episode_num}/steps")
def step_list_scenario(rest, op):
    srv, run_id = recorded_run(rest)
    return [(200, srv.get(f"/runs/{run_id}/episodes/1/steps")),
            (200, srv.get(f"/runs/{run_id}/episodes/1/steps?page=2&page_size=1")),
            (404, srv.get(f"/runs/{run_id}/episodes/9/steps")),
            (404, srv.get(f"/runs/{uuid.uuid4()}/episodes/1/steps")),
            (422, srv.get(f"/runs/{run_id}/episodes/1/steps?page_size=0"))]


@scenario("GET /runs/{run_id}/export.jsonl")
def export_scenario(rest, op):
    srv, run_id = recorded_run(rest)
    return [(200, srv.get(f"/runs/{run_id}/export.jsonl")), (404, srv.get(f"/runs/{uuid.uuid4()}/export.jsonl"))]


# -- the tests ---------------------------------------------------------------------------------------

def test_every_operation_in_the_openapi_has_a_scenario_and_no_scenario_is_stale():
    assert set(SCENARIOS) == set(OPERATIONS)


@pytest.mark.parametrize("op", OPERATIONS, ids=str)
def test_each_operation_answers_only_documented_statuses_with_bodies_its_schema_accepts(rest, op):
    replies = SCENARIOS[op](rest, op)
    for expected, reply in replies:
        assert reply.status == expected, (op, expected, reply.status, reply.body)
        CONTRACT.check(op, reply, NDJSON if reply.headers["content-type"].startswith(NDJSON) else "application/json")
    statuses = {reply.status for _, reply in replies}
    assert any(s < 300 for s in statuses), f"{op}: no success exercised"
    assert op in FAIL_ONLY_AT_THE_DOOR or any(s >= 400 for s in statuses), f"{op}: no error exercised"


def test_an_env_that_raises_answers_500_as_documented(rest):
    srv = rest(allow_env=("ExplodingToy-v0",))
    instance_id = srv.post("/envs", {"env_id": "ExplodingToy-v0"}).body["instance_id"]
    op = Operation("POST", "/envs/{instance_id}/step")
    srv.post(f"/envs/{instance_id}/reset", {})
    first, second = (srv.post(f"/envs/{instance_id}/step", {"action": 0}) for _ in range(2))
    assert (first.status, second.status, second.body["code"]) == (200, 500, "env_error")
    CONTRACT.check(op, first)
    CONTRACT.check(op, second)


# -- over a live server: what only the ASGI app and its middleware answer ---------------------------

TOKEN = "contract-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Path parameters for the door's refusals: they are answered before any view looks at them.
ANY_PARAMETERS = {"instance_id": "default", "run_id": str(uuid.UUID(int=0)), "episode_num": "1"}


def test_the_doors_refusals_are_documented_on_every_operation(serve):
    srv = serve(env_id="CartPole-v1", token=TOKEN)
    served = srv.get("/openapi.json", headers=AUTH)
    assert served.status == 200 and served.body == CONTRACT.openapi  # the OpenAPI clients read is the one checked
    too_large = b" " * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    for op in OPERATIONS:
        url = op.path.format(**ANY_PARAMETERS)
        refusals = [(400, srv.request(op.method, url, headers={"Host": "evil.example", **AUTH})),
                    (413, srv.request(op.method, url, raw=too_large, headers=AUTH))]
        if op.path != "/health":  # the one route open without the token
            refusals.append((401, srv.request(op.method, url)))
        if op.method == "POST":
            refusals.append((415, srv.request(op.method, url, raw=b"seed=1", headers=AUTH,
                                              content_type="application/x-www-form-urlencoded")))
        for expected, reply in refusals:
            assert reply.status == expected, (op, expected, reply.status, reply.body)
            CONTRACT.check(op, reply)


def test_a_method_a_route_does_not_take_gets_405_in_the_json_error_shape(serve):
    srv = serve(env_id="CartPole-v1")
    for method, path, allowed in [("GET", "/step", "POST"), ("DELETE", "/reset", "POST"), ("PUT", "/envs", "GET, POST"),
                                  ("PATCH", "/envs/default", "DELETE, GET"), ("POST", "/runs", "GET"),
                                  ("DELETE", "/health", "GET")]:
        reply = srv.request(method, path)
        assert reply.status == 405, (method, path, reply.status, reply.body)
        assert reply.headers["content-type"] == "application/json" and reply.headers["allow"] == allowed
        assert reply.body == {"success": False, "code": "method_not_allowed",
                              "error": f"{method} is not allowed on {path}: it takes {allowed}"}
