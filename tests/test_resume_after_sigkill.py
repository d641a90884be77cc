"""Resume after a crash (SPEC 14), with real processes: a runserver_gym SIGKILLed mid-episode, its successor
on the same database (SQLite, or PostgreSQL when the suite runs on it) takes the run up with resume_run,
and the next steps are gymnasium's, recorded in the same run and episode."""

import signal

import gymnasium as gym
import httpx2
from gymnasium.utils.env_checker import data_equivalence

ARGS = ["--env", "CartPole-v1", "--num-episodes", "3"]


def test_a_run_killed_mid_episode_resumes_on_the_next_server_as_if_it_had_never_died(spawn):
    first = spawn(ARGS)
    with httpx2.Client(base_url=first.base, timeout=30) as client:
        iid = client.post("/envs", json={}).json()["instance_id"]
        seed, actions = 13, [1, 1, 0, 1]
        client.post(f"/envs/{iid}/reset", json={"seed": seed})
        for n, a in enumerate(actions, 1):
            assert client.post(f"/envs/{iid}/step", json={"action": a, "expected_step": n}).status_code == 200
        run_id = client.get(f"/envs/{iid}/run/status").json()["run_id"]
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=10)

    second = spawn(ARGS)
    with httpx2.Client(base_url=second.base, timeout=30) as client:
        closed = client.get(f"/runs/{run_id}").json()
        assert (closed["state"], closed["error"]) == ("error", "interrupted")
        made = client.post("/envs", json={"resume_run": run_id})
        assert made.status_code == 201, made.text
        iid = made.json()["instance_id"]
        env = gym.make("CartPole-v1")
        env.reset(seed=seed)
        for a in actions:
            env.step(a)
        retried = client.post(f"/envs/{iid}/step", json={"action": actions[-1], "expected_step": 4}).json()
        assert retried["repeated"] is True and retried["run_progress"]["step_num"] == 4  # its answer died with it
        for n in (5, 6):
            step = client.post(f"/envs/{iid}/step", json={"action": 0, "expected_step": n}).json()
            obs, reward, *_ = env.step(0)
            assert data_equivalence(step["observation"], obs.tolist()) and step["reward"] == reward
            assert (step["run_progress"]["run_id"], step["run_progress"]["step_num"]) == (run_id, n)
        recorded = client.get(f"/runs/{run_id}/episodes/1/steps").json()["steps"]
        assert [s["action"] for s in recorded] == actions + [0, 0]
        run = client.get(f"/runs/{run_id}").json()
        assert (run["state"], run["error"], run["abandoned_episodes"]) == ("running", None, 0)
