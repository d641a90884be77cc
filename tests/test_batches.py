"""Batched steps (SPEC 11): every action checked first, stop at the episode's end, all steps committed at once."""

import anyio
import gymnasium as gym
import numpy as np
import pytest
from mcp import Client

from runs import ledger
from runs.models import Step
from tests.sql_statements import sql_statements

CARTPOLE = {"env_id": "CartPole-v1"}


def rollout(seed, actions):
    """gymnasium's observations for `actions` after reset(seed), stopping where the episode ends."""
    env = gym.make("CartPole-v1")
    env.reset(seed=seed)
    out = []
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(a)
        out.append(np.asarray(obs).tolist())
        if terminated or truncated:
            break
    return out


def test_a_batch_answers_one_entry_per_step_as_gymnasium_steps(door):
    srv = door(**CARTPOLE).rest
    srv.post("/reset", {"seed": 3})
    r = srv.post("/step", {"actions": [1, 0, 1]})
    assert r.status == 200 and r.body["steps"] == 3 and r.body["rewards"] == [1.0, 1.0, 1.0], r.body
    assert np.allclose(r.body["observations"], rollout(3, [1, 0, 1]), atol=1e-6)
    assert r.body["infos"] == [{}, {}, {}] and r.body["done"] is False and "run_progress" not in r.body


def test_a_batch_with_one_bad_action_steps_nothing(door):
    srv = door(**CARTPOLE).rest
    srv.post("/reset", {"seed": 3})
    r = srv.post("/step", {"actions": [1, 0, "1", 1]})
    assert r.status == 422 and r.body["code"] == "invalid_action", r.body
    assert r.body["error"].startswith("actions[2]: ") and "no action of the batch was taken" in r.body["error"]
    first = srv.post("/step", {"action": 1})
    assert np.allclose(first.body["observation"], rollout(3, [1])[0], atol=1e-6)


def test_a_batch_stops_at_the_episodes_end_and_takes_no_later_action(door):
    srv = door(**CARTPOLE).rest
    srv.post("/reset", {"seed": 0})
    r = srv.post("/step", {"actions": [0] * 40})
    ref = rollout(0, [0] * 40)
    assert r.body["steps"] == len(ref) < 40 and r.body["done"] is True and r.body["terminated"][-1] is True
    assert srv.post("/step", {"actions": [0]}).body["code"] == "episode_over"


def test_return_last_cuts_observations_and_infos_to_the_last_step(door):
    srv = door(**CARTPOLE).rest
    srv.post("/reset", {"seed": 5})
    r = srv.post("/step", {"actions": [1, 0, 1, 0], "return": "last"})
    assert r.body["steps"] == 4 and len(r.body["rewards"]) == 4 and len(r.body["terminated"]) == 4
    assert len(r.body["observations"]) == len(r.body["infos"]) == 1
    assert np.allclose(r.body["observations"][0], rollout(5, [1, 0, 1, 0])[-1], atol=1e-6)


@pytest.mark.parametrize("body", [{"actions": []}, {"action": 0, "actions": [0]}, {"actions": 0}, {},
                                  {"actions": [0], "return": "first"}], ids=repr)
def test_requests_that_are_neither_one_step_nor_a_batch_are_422(door, body):
    srv = door(**CARTPOLE).rest
    srv.post("/reset", {"seed": 1})
    r = srv.post("/step", body)
    assert r.status == 422 and r.body["code"] == "invalid_argument", r.body


def test_max_batch_bounds_a_batch_and_says_so(door):
    srv = door(max_batch=4, **CARTPOLE).rest
    srv.post("/reset", {"seed": 1})
    r = srv.post("/step", {"actions": [0] * 5})
    assert r.status == 422 and "1 to 4 actions" in r.body["error"] and "--max-batch" in r.body["error"], r.body
    assert srv.post("/step", {"actions": [0] * 4}).body["steps"] == 4


def test_the_run_managers_step_limit_truncates_inside_a_batch(door):
    srv = door(run_manager=True, max_steps_per_episode=3, **CARTPOLE).rest
    srv.post("/reset", {"seed": 2})
    r = srv.post("/step", {"actions": [1, 0, 1, 0, 1]})
    assert r.body["steps"] == 3 and r.body["truncated"] == [False, False, True] and r.body["done"] is True
    assert r.body["run_progress"]["step_num"] == 3 and r.body["run_progress"]["completed_episodes"] == 1


def test_every_step_of_a_batch_is_in_the_ledger_in_order(door):
    d = door(run_manager=True, **CARTPOLE)
    d.rest.post("/reset", {"seed": 4})
    r = d.rest.post("/step", {"actions": [1, 0, 0, 1]})
    run_id = r.body["run_progress"]["run_id"]
    rows = d.rest.get(f"/runs/{run_id}/episodes/1/steps").body["steps"]
    assert [(s["step_num"], s["action"]) for s in rows] == [(1, 1), (2, 0), (3, 0), (4, 1)]
    assert np.allclose([s["observation"] for s in rows], rollout(4, [1, 0, 0, 1]), atol=1e-6)


def test_a_batchs_steps_are_committed_in_one_insert(door, monkeypatch):
    d = door(run_manager=True, **CARTPOLE)
    manager = d.engine.run_manager("default")
    monkeypatch.setattr(ledger._writer, "inline", True)  # on PostgreSQL too: the writes run on this thread
    d.rest.post("/reset", {"seed": 4})
    observation = d.rest.post("/step", {"action": 1}).body["observation"]
    with sql_statements() as statements, manager.batch():
        for step in range(20):
            manager.on_step(action=step % 2, observation=observation, reward=1.0, terminated=False,
                            truncated=False, info={})
    assert statements == ["INSERT"]
    assert Step.objects.filter(episode__run_id=manager.run_id).count() == 21


def test_mcp_step_env_with_actions_reports_progress_on_a_long_batch(door):
    d = door(env_id="Pendulum-v1")  # no episode ends before its 200-step time limit
    reports = []

    async def progress(done, total, message):
        reports.append((done, total))

    async def scenario():
        async with Client(d.server) as client:
            await client.call_tool("reset_env", {"seed": 0})
            return await client.call_tool("step_env", {"actions": [[0.5]] * 150}, progress_callback=progress)

    result = anyio.run(scenario)
    assert not result.is_error and result.structured_content["steps"] == 150, result.structured_content
    assert reports == [(64, 150), (128, 150)], reports  # every PROGRESS_EVERY steps, in order
