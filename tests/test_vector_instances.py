"""Vector instances (SPEC 12): gymnasium.make_vec behind an instance, its sub-envs' episodes in one run."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

from runs import ledger
from tests.sql_statements import sql_statements

CARTPOLE = {"env_id": "CartPole-v1"}
LEFT = [0, 0, 0, 0]
SEED = 3  # pushing left from seed 3, the sub-envs end at steps 9, 8, 9 and 10


def make_vec(mode="next_step", steps=12, seed=SEED):
    modes = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}
    env = gym.make_vec("CartPole-v1", num_envs=4, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": modes[mode]})
    first = env.reset(seed=seed)[0].tolist()
    out = [env.step(np.zeros(4, dtype=np.int64)) for _ in range(steps)]
    env.close()
    return first, out


def open_vector(srv, **body) -> str:
    r = srv.post("/envs", {"num_envs": 4, **body})
    assert r.status == 201, r.body
    return f"/envs/{r.body['instance_id']}"


@pytest.mark.parametrize("vectorization_mode", ["sync", "async"])
def test_a_vector_instance_steps_as_make_vec_does_across_autoresets(door, vectorization_mode):
    srv = door(**CARTPOLE).rest
    path = open_vector(srv, vectorization_mode=vectorization_mode)
    first, ref = make_vec()
    assert np.allclose(srv.post(f"{path}/reset", {"seed": SEED}).body["observation"], first, atol=1e-6)
    for t, (obs, rewards, terminated, truncated, _) in enumerate(ref):
        r = srv.post(f"{path}/step", {"action": LEFT}).body
        assert np.allclose(r["observation"], obs, atol=1e-6), t
        assert r["reward"] == rewards.tolist() and r["terminated"] == terminated.tolist(), t
        assert r["done"] == (terminated | truncated).tolist(), t


def test_same_step_autoreset_gives_the_final_observation_in_info(door):
    srv = door(**CARTPOLE).rest
    path = open_vector(srv, autoreset_mode="same_step")
    _, ref = make_vec("same_step", steps=9)
    srv.post(f"{path}/reset", {"seed": SEED})
    for obs, _, _, _, _ in ref:
        r = srv.post(f"{path}/step", {"action": LEFT}).body
        assert np.allclose(r["observation"], obs, atol=1e-6)
    info = ref[-1][4]
    assert r["info"]["_final_obs"] == info["_final_obs"].tolist() == [True, False, True, False]
    assert np.allclose(r["info"]["final_obs"][0], info["final_obs"][0], atol=1e-6) and r["info"]["final_obs"][1] is None


def test_with_autoreset_disabled_ended_sub_envs_wait_for_a_masked_reset(door):
    srv = door(**CARTPOLE).rest
    path = open_vector(srv, autoreset_mode="disabled")
    srv.post(f"{path}/reset", {"seed": SEED})
    for _ in range(8):  # sub-env 1 ends at step 8
        r = srv.post(f"{path}/step", {"action": LEFT})
    assert r.body["done"] == [False, True, False, False]
    refused = srv.post(f"{path}/step", {"action": LEFT})
    assert refused.status == 409 and refused.body["code"] == "episode_over" and "[1]" in refused.body["error"]
    reset = srv.post(f"{path}/reset", {"options": {"reset_mask": [False, True, False, False]}})
    assert reset.status == 200, reset.body
    assert srv.post(f"{path}/step", {"action": LEFT}).status == 200
    bad = srv.post(f"{path}/reset", {"options": {"reset_mask": [1, 0, 0, 0]}})
    assert bad.status == 422 and "reset_mask must be a list of 4 booleans" in bad.body["error"]


def test_env_info_gives_the_single_spaces_and_the_batched_schema(door):
    srv = door(**CARTPOLE).rest
    path = open_vector(srv, autoreset_mode="same_step")
    info = srv.get(path).body["env_info"]
    single = srv.get("/info").body["env_info"]
    assert (info["num_envs"], info["autoreset_mode"], info["vectorization_mode"]) == (4, "same_step", "sync")
    assert info["single_action_space"] == single["action_space"]
    assert info["single_observation_space"] == single["observation_space"]
    assert info["action_space"]["type"] == "MultiDiscrete" and info["observation_space"]["shape"] == [4, 4]
    assert info["action_schema"]["minItems"] == info["action_schema"]["maxItems"] == 4
    assert info["render_mode"] is None and info["description"] == single["description"]
    listed = {i["instance_id"]: i for i in srv.get("/envs").body["instances"]}
    assert listed[path.rsplit("/", 1)[1]]["num_envs"] == 4 and listed["default"]["num_envs"] is None


@pytest.mark.parametrize("body, words", [
    ({"num_envs": 1}, "num_envs must be an integer from 2 to 6"),
    ({"num_envs": 7}, "num_envs must be an integer from 2 to 6"),
    ({"num_envs": 2, "vectorization_mode": "threads"}, "'vectorization_mode': Input should be 'sync' or 'async'"),
    ({"num_envs": 2, "autoreset_mode": "NextStep"}, "Input should be 'next_step', 'same_step' or 'disabled'"),
    ({"autoreset_mode": "same_step"}, "give num_envs too"),
    ({"num_envs": 2, "render_mode": "rgb_array"}, "vector instances do not render"),
], ids=repr)
def test_what_a_vector_instance_cannot_be_is_refused_before_anything_is_made(door, body, words):
    d = door(max_num_envs=6, **CARTPOLE)
    r = d.rest.post("/envs", body)
    assert r.status == 422 and words in r.body["error"], r.body
    assert len(d.engine.instances()) == 1


def test_a_vector_step_refuses_a_wrong_action_naming_the_sub_env(door):
    srv = door(**CARTPOLE).rest
    path = open_vector(srv)
    srv.post(f"{path}/reset", {"seed": SEED})
    r = srv.post(f"{path}/step", {"action": [0, 1, 2, 0]})
    assert r.status == 422 and r.body["error"].startswith("action[2] (sub-env 2): "), r.body
    r = srv.post(f"{path}/step", {"action": [0, 1]})
    assert r.status == 422 and "takes action as a list of 4 actions" in r.body["error"]
    assert srv.post(f"{path}/step", {"actions": [LEFT]}).body["code"] == "invalid_argument"
    assert srv.post(f"{path}/render", {}).body["code"] == "invalid_argument"
    sample = srv.get(f"{path}/sample").body["action"]
    assert len(sample) == 4 and all(a in (0, 1) for a in sample)


def test_the_ledger_records_each_sub_envs_episodes_with_its_env_index(door):
    d = door(run_manager=True, num_episodes=100, **CARTPOLE)
    path = open_vector(d.rest)
    reset = d.rest.post(f"{path}/reset", {"seed": SEED}).body
    assert reset["run_progress"]["episode_nums"] == [1, 2, 3, 4]
    for _ in range(11):
        step = d.rest.post(f"{path}/step", {"action": LEFT}).body
    # Sub-env 1 ended at step 8 and restarted on step 9 (its episode 5); the others at 9 and 10.
    assert step["run_progress"]["episode_nums"] == [6, 5, 7, 8] and step["run_progress"]["completed_episodes"] == 4
    stats = d.rest.get(f"/runs/{reset['run_progress']['run_id']}").body
    ended = sorted((e["env_index"], e["total_steps"]) for e in stats["episodes"] if e["done"])
    assert ended == [(0, 9), (1, 8), (2, 9), (3, 10)]
    steps = d.rest.get(f"/runs/{stats['run_id']}/episodes/2/steps").body["steps"]
    assert [s["step_num"] for s in steps] == list(range(1, 9)) and steps[-1]["terminated"] is True


def test_a_vector_runs_episodes_are_its_first_num_episodes(door):
    d = door(run_manager=True, num_episodes=2, **CARTPOLE)
    path = open_vector(d.rest)
    reset = d.rest.post(f"{path}/reset", {"seed": SEED}).body["run_progress"]
    assert reset["episode_nums"] == [1, 2, None, None]  # sub-envs 2 and 3 step on unrecorded
    for _ in range(9):  # sub-env 1 ends at step 8, sub-env 0 at step 9: the run's two episodes
        d.rest.post(f"{path}/step", {"action": LEFT})
    stats = d.rest.get(f"/runs/{reset['run_id']}").body
    assert stats["state"] == "completed" and stats["completed_episodes"] == 2
    assert sorted((e["env_index"], e["total_steps"], e["done"]) for e in stats["episodes"]) == [
        (0, 9, True), (1, 8, True)]
    assert d.rest.post(f"{path}/step", {"action": LEFT}).body["code"] == "run_completed"


def test_a_vector_step_is_one_statement_unless_an_episode_ends(door, monkeypatch):
    d = door(run_manager=True, **CARTPOLE)
    monkeypatch.setattr(ledger._writer, "inline", True)  # on PostgreSQL too: the writes run on this thread
    path = open_vector(d.rest)
    d.rest.post(f"{path}/reset", {"seed": SEED})
    inst = d.engine.get(path.rsplit("/", 1)[1])

    def statements(step) -> list[str]:
        with sql_statements() as kinds:
            step()  # on this thread, so that its statements are seen here
        return kinds

    assert statements(lambda: inst.op_step(LEFT)) == ["INSERT"]
    for _ in range(6):
        inst.op_step(LEFT)
    # Step 8: sub-env 1 ends; its episode closes and the run's totals move, in the same transaction.
    assert statements(lambda: inst.op_step(LEFT)) == ["INSERT", "UPDATE", "UPDATE"]
