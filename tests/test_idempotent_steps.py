"""Retry-safe resets and steps (SPEC 14): a retry of the answer just given is answered again with
`repeated: true` and moves nothing; any other number out of turn is 409 out_of_order; through a proxy
that drops answers, a retrying client never steps twice and its trajectory is gymnasium's."""

import http.client
import json
import socket
import threading
from contextlib import closing

import anyio
import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import data_equivalence
from mcp import Client

from runs.models import Step

RUNS = {"env_id": "CartPole-v1", "run_manager": True, "num_episodes": 100}


def gym_trajectory(seed: int, actions: list) -> list:
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    out = [obs.tolist()]
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs.tolist())
    env.close()
    return out


def test_a_retried_step_is_answered_again_and_the_env_moves_once(door):
    d = door(**RUNS)
    d.post("/reset", {"seed": 3})
    first = d.post("/step", {"action": 1, "expected_step": 1})
    again = d.post("/step", {"action": 1, "expected_step": 1})
    assert first["repeated"] is False and again["repeated"] is True
    assert {**again, "repeated": False} == first
    nxt = d.post("/step", {"action": 0, "expected_step": 2})
    assert data_equivalence(nxt["observation"], gym_trajectory(3, [1, 0])[2])
    assert list(Step.objects.order_by("step_num").values_list("action", flat=True)) == [1, 0]


@pytest.mark.parametrize(("expected", "action"), [(5, 0), (1, 0), (1, 1.0), (1, True)])
def test_a_step_out_of_turn_or_with_another_action_is_out_of_order_and_moves_nothing(door, expected, action):
    d = door(**RUNS)
    d.post("/reset", {"seed": 4})
    d.post("/step", {"action": 1, "expected_step": 1})
    refused = d.rest.post("/step", {"action": action, "expected_step": expected})
    assert refused.status == 409 and refused.body["code"] == "out_of_order", refused.body
    assert "step 1" in refused.body["error"] and "next step is 2" in refused.body["error"]
    assert Step.objects.count() == 1
    nxt = d.post("/step", {"action": 0, "expected_step": 2})
    assert data_equivalence(nxt["observation"], gym_trajectory(4, [1, 0])[2])


def test_the_retry_of_an_episodes_last_step_is_answered_though_the_episode_is_over(door):
    d = door(**RUNS, max_steps_per_episode=2)
    d.post("/reset", {"seed": 0})
    d.post("/step", {"action": 0, "expected_step": 1})
    last = d.post("/step", {"action": 0, "expected_step": 2})
    assert last["done"] is True
    again = d.post("/step", {"action": 0, "expected_step": 2})
    assert again["repeated"] is True and again["truncated"] is True
    assert d.rest.post("/step", {"action": 0}).body["code"] == "episode_over"


def test_a_retried_reset_starts_no_episode_and_a_stepped_one_cannot_be_retried(door):
    d = door(**RUNS)
    first = d.post("/reset", {"expected_episode": 1})  # no seed: the server draws one, a retry repeats it
    again = d.post("/reset", {"expected_episode": 1})
    assert again["repeated"] is True and again["run_progress"] == first["run_progress"]
    assert d.rest.post("/reset", {"seed": 1, "expected_episode": 1}).body["code"] == "out_of_order"  # other seed
    d.post("/step", {"action": 0})
    refused = d.rest.post("/reset", {"expected_episode": 1})
    assert refused.status == 409 and refused.body["code"] == "out_of_order"
    assert d.post("/reset", {"expected_episode": 2})["run_progress"]["episode_num"] == 2


def test_expected_numbers_work_with_the_run_manager_off(door):
    d = door(env_id="CartPole-v1")
    assert "run_progress" not in d.post("/reset", {"seed": 0, "expected_episode": 1})
    assert d.post("/reset", {"seed": 0, "expected_episode": 1})["repeated"] is True
    d.post("/step", {"action": 1, "expected_step": 1})
    assert d.post("/step", {"action": 1, "expected_step": 1})["repeated"] is True
    assert d.rest.post("/step", {"action": 1, "expected_step": 3}).body["code"] == "out_of_order"


@pytest.mark.parametrize("body", [{"action": 0, "expected_step": 0}, {"action": 0, "expected_step": "1"},
                                  {"action": 0, "expected_step": True}])
def test_an_expected_step_that_is_not_a_positive_integer_is_422(door, body):
    d = door(**RUNS)
    d.post("/reset", {"seed": 0})
    assert d.rest.post("/step", body).status == 422
    assert Step.objects.count() == 0


def test_mcp_reset_env_and_step_env_take_the_expected_numbers(door):
    d = door(**RUNS)

    async def scenario():
        with anyio.fail_after(60):
            async with Client(d.server) as client:
                r = await client.call_tool("reset_env", {"seed": 5, "expected_episode": 1})
                assert not r.is_error and r.structured_content["run_progress"]["seed"] == 5
                first = await client.call_tool("step_env", {"action": 1, "expected_step": 1})
                again = await client.call_tool("step_env", {"action": 1, "expected_step": 1})
                assert again.structured_content["repeated"] is True
                assert again.structured_content["observation"] == first.structured_content["observation"]
                wrong = await client.call_tool("step_env", {"action": 1, "expected_step": 7})
                assert wrong.is_error and wrong.structured_content["code"] == "out_of_order"
                typo = await client.call_tool("step_env", {"action": 1, "expected_step": "2"})
                assert typo.is_error and typo.structured_content["code"] == "invalid_argument"

    anyio.run(scenario)


class DroppingProxy:
    """A TCP proxy for one-request connections that forwards each request, waits for the server's whole
    answer, and withholds every third one (hangs up instead): the server did the work, the client never
    heard. Deterministic, so the test fails the same way every time."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answers = self.dropped = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with closing(client), socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30) as upstream:
            client.settimeout(30)
            upstream.sendall(_read_request(client))
            answer = b"".join(iter(lambda: upstream.recv(65536), b""))  # Connection: close ends it
            with self._lock:
                self.answers += 1
                drop = self.answers % 3 == 0
                self.dropped += drop
            if not drop:
                client.sendall(answer)

    def close(self) -> None:
        self.listener.close()


def _read_request(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def call_until_answered(port: int, path: str, body: dict, attempts: int = 10) -> dict:
    """POST, retrying the same request whenever the answer is lost (what a client of a flaky network does)."""
    for _ in range(attempts):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", "Connection": "close"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200, answer
            return answer
        except (http.client.RemoteDisconnected, ConnectionError):
            continue
        finally:
            conn.close()
    raise AssertionError(f"no answer to {path} after {attempts} attempts")


def test_through_a_proxy_that_drops_answers_retries_never_step_twice_and_the_trajectory_is_gymnasiums(serve):
    srv = serve(**RUNS)
    proxy = DroppingProxy(int(srv.base.rsplit(":", 1)[1]))
    try:
        seed, actions = 21, [1, 0, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1]
        reset = call_until_answered(proxy.port, "/reset", {"seed": seed, "expected_episode": 1})
        observations, repeated = [reset["observation"]], int(reset["repeated"])
        for n, action in enumerate(actions, 1):
            step = call_until_answered(proxy.port, "/step", {"action": action, "expected_step": n})
            assert step["run_progress"]["step_num"] == n
            observations.append(step["observation"])
            repeated += step["repeated"]
            if step["done"]:
                actions = actions[:n]
                break
    finally:
        proxy.close()
    assert proxy.dropped >= 3 and repeated == proxy.dropped  # every lost answer was retried and repeated
    assert data_equivalence(observations, gym_trajectory(seed, actions))
    recorded = Step.objects.order_by("step_num")
    assert list(recorded.values_list("step_num", flat=True)) == list(range(1, len(actions) + 1))
    assert list(recorded.values_list("action", flat=True)) == actions
