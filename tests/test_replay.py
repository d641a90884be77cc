"""Replaying the ledger (SPEC 14): verify_run and POST /runs/{id}/verify report the first divergence;
resume takes up a stopped run where it stood; fork opens a new run after any recorded step; an env
whose replay does not reproduce the record is refused with 409 replay_diverged."""

import io

import gymnasium as gym
import pytest
from django.core.management import CommandError, call_command
from gymnasium.utils.env_checker import data_equivalence

from runs.models import Episode, Run

RUNS = {"env_id": "CartPole-v1", "run_manager": True, "num_episodes": 5, "allow_env": ("DriftingToy-v0",)}


def gym_trajectory(seed, actions):
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    out = [(obs.tolist(), None)]
    for a in actions:
        obs, reward, *_ = env.step(a)
        out.append((obs.tolist(), float(reward)))
    env.close()
    return out


def play(d, iid, seed, actions):
    d.post(f"/envs/{iid}/reset", {"seed": seed})
    for a in actions:
        assert d.rest.post(f"/envs/{iid}/step", {"action": a}).status == 200
    return d.get(f"/envs/{iid}/run/status")["run_id"]


def new_instance(d, **body):
    r = d.rest.post("/envs", body)
    assert r.status == 201, r.body
    return r.body


def verify(*args):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_run", *args, stdout=out, stderr=err)
    except CommandError as exc:
        return exc.returncode, out.getvalue() + err.getvalue() + str(exc)
    return 0, out.getvalue() + err.getvalue()


def test_verify_run_replays_every_episode_and_says_they_match(door):
    d = door(**RUNS)
    iid = new_instance(d)["instance_id"]
    run_id = play(d, iid, 1, [0, 1, 1])
    play(d, iid, 2, [1, 1])  # the second reset abandons the first episode: verified all the same
    code, said = verify(run_id)
    assert code == 0 and "2 episodes, 5 steps: all match" in said, said
    assert "[" + "#" * 30 + "] 5/5 steps" in said  # the progress bar, finished
    assert verify(run_id, "--episode", "2")[0] == 0


def test_verify_run_reports_the_first_divergence_with_exit_code_1(door):
    d = door(**RUNS)
    iid = new_instance(d, env_id="DriftingToy-v0")["instance_id"]
    run_id = play(d, iid, 7, [0, 1, 0, 1])
    code, said = verify(run_id)
    assert code == 1 and "episode 1 diverges at step 3: observation" in said, said
    report = d.post(f"/runs/{run_id}/verify", {"episode_num": 1})
    assert report["matched"] is False and report["steps_checked"] == 3
    assert report["divergence"]["step_num"] == 3 and report["divergence"]["field"] == "observation"


def test_verify_of_an_unknown_run_or_episode_exits_2_naming_it(door):
    d = door(**RUNS)
    code, said = verify("00000000-0000-0000-0000-000000000000")
    assert code == 2 and "00000000-0000-0000-0000-000000000000" in said
    iid = new_instance(d)["instance_id"]
    run_id = play(d, iid, 1, [0])
    code, said = verify(run_id, "--episode", "9")
    assert code == 2 and "no episode 9" in said
    assert d.rest.post(f"/runs/{run_id}/verify", {"episode_num": 9}).status == 404


def test_post_verify_answers_a_matching_report(door):
    d = door(**RUNS)
    iid = new_instance(d)["instance_id"]
    run_id = play(d, iid, 3, [1, 0, 1])
    report = d.post(f"/runs/{run_id}/verify", {"episode_num": 1})
    assert report == {"success": True, "run_id": run_id, "episode_num": 1, "matched": True, "steps_checked": 3,
                      "divergence": None}
    assert d.rest.post(f"/runs/{run_id}/verify", {"episode_num": 0}).status == 422


def test_a_stopped_run_resumes_on_a_new_instance_with_its_open_episode_replayed(door):
    d = door(**RUNS)
    made = new_instance(d)
    run_id = play(d, made["instance_id"], 8, [1, 0, 1])
    assert d.rest.request("DELETE", f"/envs/{made['instance_id']}").status == 200
    assert Run.objects.get(pk=run_id).state == "stopped"
    resumed = new_instance(d, resume_run=run_id)
    iid = resumed["instance_id"]
    assert resumed["run_id"] == run_id and resumed["needs_reset"] is False
    status = d.get(f"/envs/{iid}/run/status")
    assert (status["state"], status["current_episode"], status["current_step"]) == ("running", 1, 3)
    ref = gym_trajectory(8, [1, 0, 1, 0])
    # A client whose answer to step 3 was lost with the old instance retries it: answered again, not redone.
    retried = d.post(f"/envs/{iid}/step", {"action": 1, "expected_step": 3})
    assert retried["repeated"] is True and data_equivalence(retried["observation"], ref[3][0])
    assert retried["reward"] == ref[3][1] and retried["run_progress"]["step_num"] == 3
    assert d.rest.post(f"/envs/{iid}/step", {"action": 0, "expected_step": 3}).body["code"] == "out_of_order"
    step = d.post(f"/envs/{iid}/step", {"action": 0, "expected_step": 4})
    assert data_equivalence(step["observation"], ref[4][0]) and step["run_progress"]["step_num"] == 4
    run = Run.objects.get(pk=run_id)
    assert (run.state, run.reason, run.instance_id, run.completed_episodes) == ("running", "", iid, 0)
    episode = Episode.objects.get(run_id=run_id)
    assert (episode.ended_at, episode.abandoned) == (None, False)
    stats = d.get(f"/envs/{iid}/run/statistics")
    assert stats["episodes"][0]["total_steps"] == 4 and stats["abandoned_episodes"] == 0


def test_a_run_stopped_between_episodes_resumes_at_its_next_reset(door):
    d = door(**RUNS, max_steps_per_episode=2)
    iid = new_instance(d)["instance_id"]
    run_id = play(d, iid, 0, [0, 0])  # the step limit ends episode 1
    d.post(f"/envs/{iid}/run/reset", {})
    resumed = new_instance(d, resume_run=run_id)
    assert resumed["needs_reset"] is True
    r = d.post(f"/envs/{resumed['instance_id']}/reset", {"seed": 1, "expected_episode": 2})
    assert r["run_progress"]["run_id"] == run_id and r["run_progress"]["episode_num"] == 2


def test_only_a_stopped_or_interrupted_run_can_be_resumed(door):
    d = door(**{**RUNS, "num_episodes": 1})
    iid = new_instance(d)["instance_id"]
    live = play(d, iid, 0, [0])
    refused = d.rest.post("/envs", {"resume_run": live})
    assert refused.status == 409 and refused.body["code"] == "run_not_resumable" and "live" in refused.body["error"]
    for _ in range(20):
        if d.post(f"/envs/{iid}/step", {"action": 0})["done"]:
            break
    assert d.get(f"/runs/{live}")["state"] == "completed"
    refused = d.rest.post("/envs", {"resume_run": live})
    assert refused.status == 409 and "only a stopped or interrupted run" in refused.body["error"]
    assert d.rest.post("/envs", {"resume_run": "not-a-run"}).status == 404
    assert d.rest.post("/envs", {"resume_run": live, "num_episodes": 3}).status == 422


def test_a_run_whose_replay_diverges_is_not_resumed(door):
    d = door(**RUNS)
    made = new_instance(d, env_id="DriftingToy-v0")
    run_id = play(d, made["instance_id"], 2, [0, 1, 0])
    d.post(f"/envs/{made['instance_id']}/run/reset", {})
    refused = d.rest.post("/envs", {"resume_run": run_id})
    assert refused.status == 409 and refused.body["code"] == "replay_diverged", refused.body
    assert "step 3" in refused.body["error"]
    assert Run.objects.get(pk=run_id).state == "stopped"  # nothing taken up
    assert len(d.get("/envs")["instances"]) == 2  # no instance was left behind


def test_a_fork_starts_after_the_chosen_step_in_a_new_run_that_copies_the_trajectory(door):
    d = door(**RUNS)
    iid = new_instance(d)["instance_id"]
    actions = [1, 0, 1, 1, 0]
    source = play(d, iid, 9, actions)
    fork = new_instance(d, fork_from={"run_id": source, "episode_num": 1, "step_num": 2})
    assert fork["run_id"] != source and fork["needs_reset"] is False
    step = d.post(f"/envs/{fork['instance_id']}/step", {"action": 0, "expected_step": 3})
    assert data_equivalence(step["observation"], gym_trajectory(9, [1, 0, 0])[3][0])
    forked = d.get(f"/runs/{fork['run_id']}")
    assert forked["parent"] == {"run_id": source, "episode_num": 1, "step_num": 2}
    assert forked["episodes"][0]["seed"] == 9 and forked["episodes"][0]["total_steps"] == 3
    steps = d.get(f"/runs/{fork['run_id']}/episodes/1/steps")["steps"]
    assert [s["action"] for s in steps] == [1, 0, 0]  # a whole trajectory of its own, replayable
    assert d.post(f"/runs/{fork['run_id']}/verify", {"episode_num": 1})["matched"] is True


def test_a_fork_at_the_reset_or_at_an_episodes_last_step(door):
    d = door(**RUNS, max_steps_per_episode=3)
    iid = new_instance(d)["instance_id"]
    source = play(d, iid, 4, [0, 1, 0])  # the step limit ends it at step 3
    at_reset = new_instance(d, fork_from={"run_id": source, "episode_num": 1, "step_num": 0})
    step = d.post(f"/envs/{at_reset['instance_id']}/step", {"action": 1})
    assert data_equivalence(step["observation"], gym_trajectory(4, [1])[1][0])
    at_end = new_instance(d, fork_from={"run_id": source, "episode_num": 1, "step_num": 3})
    assert d.rest.post(f"/envs/{at_end['instance_id']}/step", {"action": 0}).body["code"] == "reset_required"
    ended = d.get(f"/runs/{at_end['run_id']}")["episodes"][0]
    assert ended["done"] is True and ended["truncated"] is True
    beyond = d.rest.post("/envs", {"fork_from": {"run_id": source, "episode_num": 1, "step_num": 4}})
    assert beyond.status == 422 and "0..3" in beyond.body["error"]
    assert d.rest.post("/envs", {"fork_from": {"run_id": source, "episode_num": 2, "step_num": 0}}).status == 404


def test_a_fork_whose_replay_diverges_is_refused(door):
    d = door(**RUNS)
    iid = new_instance(d, env_id="DriftingToy-v0")["instance_id"]
    source = play(d, iid, 1, [0, 0, 0])
    assert d.rest.post("/envs", {"fork_from": {"run_id": source, "episode_num": 1, "step_num": 2}}).status == 201
    refused = d.rest.post("/envs", {"fork_from": {"run_id": source, "episode_num": 1, "step_num": 3}})
    assert refused.status == 409 and refused.body["code"] == "replay_diverged"


def test_mcp_create_env_resumes_and_forks(door):
    import anyio
    from mcp import Client

    d = door(**RUNS)
    iid = new_instance(d)["instance_id"]
    source = play(d, iid, 6, [1, 1])
    d.post(f"/envs/{iid}/run/reset", {})

    async def scenario():
        with anyio.fail_after(60):
            async with Client(d.server) as client:
                resumed = await client.call_tool("create_env", {"resume_run": source})
                forked = await client.call_tool("create_env", {"fork_from": {"run_id": source, "episode_num": 1,
                                                                              "step_num": 1}})
                return resumed.structured_content, forked.structured_content

    resumed, forked = anyio.run(scenario)
    assert resumed["run_id"] == source
    assert d.get(f"/runs/{forked['run_id']}")["parent"]["step_num"] == 1


@pytest.mark.parametrize("off", [{"run_manager": False}])
def test_resume_and_fork_need_the_run_manager(door, off):
    d = door(env_id="CartPole-v1", **off)
    r = d.rest.post("/envs", {"resume_run": "00000000-0000-0000-0000-000000000000"})
    assert r.status == 404 and r.body["code"] == "run_manager_disabled"


def test_a_fork_registers_only_its_own_run_as_live(door):
    from runs import live

    d = door(**RUNS)
    iid = new_instance(d)["instance_id"]
    source = play(d, iid, 2, [0, 1])
    before = set(live.live_run_ids())
    fork = new_instance(d, fork_from={"run_id": source, "episode_num": 1, "step_num": 1})
    assert set(live.live_run_ids()) - before == {fork["run_id"]}
