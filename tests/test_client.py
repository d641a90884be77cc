"""gymenv.client (SPEC 13): RemoteEnv and RemoteVectorEnv against a live server, as a training script uses them."""

import gc
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env, data_equivalence
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from gymenv.client import RemoteEnv, RemoteError, RemoteVectorEnv

ROOT = Path(__file__).resolve().parent.parent
SERVER = {"env_id": "CartPole-v1", "allow_env": ("FrozenLake-v1", "Pendulum-v1"), "num_episodes": 1000}


def live_ids(srv) -> set[str]:
    return {i.instance_id for i in srv.engine.instances()}


def test_importing_the_clients_imports_no_django():
    code = "import sys, gymenv.client; print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_remote_env_follows_gymnasiums_trajectory_with_its_own_dtypes(serve):
    srv = serve(**SERVER)
    env, ref = RemoteEnv(srv.base, env_id="Pendulum-v1"), gym.make("Pendulum-v1")
    try:
        assert env.action_space == ref.action_space and env.observation_space == ref.observation_space
        assert data_equivalence(env.reset(seed=4)[0], ref.reset(seed=4)[0])
        for a in (0.5, -2.0, 1.0):
            action = np.array([a], dtype=np.float32)
            obs, reward, terminated, _truncated, _ = env.step(action)
            ref_obs, ref_reward, *_ = ref.step(action)
            assert data_equivalence(obs, ref_obs) and abs(reward - ref_reward) < 1e-5 and not terminated
    finally:
        env.close()


# CartPole's own space has infinite bounds, which the checker warns about in-process too.
@pytest.mark.filterwarnings("ignore:.*is -infinity:UserWarning", "ignore:.*is infinity:UserWarning")
@pytest.mark.parametrize("env_id", ["CartPole-v1", "FrozenLake-v1"])
def test_gymnasiums_env_checker_passes(serve, env_id):
    srv = serve(**SERVER)
    env = RemoteEnv(srv.base, env_id=env_id)
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_a_remote_env_keeps_one_connection_and_renders_frames(serve):
    srv = serve(**SERVER)
    env = RemoteEnv(srv.base)
    try:
        env.reset(seed=0)
        connection = env._conn._conn
        for _ in range(5):
            env.step(env.action_space.sample())
        assert env._conn._conn is connection  # keep-alive: no new connection per call
        frame = env.render()
        assert env.render_mode == "rgb_array" and frame.dtype == np.uint8 and frame.shape == (400, 600, 3)
    finally:
        env.close()


def test_the_instance_goes_on_close_and_when_the_env_is_garbage_collected(serve):
    srv = serve(**SERVER)
    before = live_ids(srv)
    env = RemoteEnv(srv.base, env_id="FrozenLake-v1")
    assert len(live_ids(srv) - before) == 1
    env.close()
    env.close()  # twice is fine, as for any gymnasium env
    assert live_ids(srv) == before
    vector = RemoteVectorEnv(srv.base, "CartPole-v1", num_envs=2)
    assert len(live_ids(srv) - before) == 1
    del vector
    gc.collect()
    assert live_ids(srv) == before


def test_refusals_raise_with_the_servers_status_code_and_message(serve):
    srv = serve(**SERVER)
    with pytest.raises(RemoteError) as refused:
        RemoteEnv(srv.base, env_id="Acrobot-v1")
    assert refused.value.status == 403 and refused.value.code == "env_not_allowed"
    assert "Acrobot-v1" in refused.value.message and str(refused.value).startswith("403 env_not_allowed: ")
    env = RemoteEnv(srv.base)
    try:
        with pytest.raises(RemoteError) as refused:
            env.step(0)
        assert refused.value.code == "reset_required" and refused.value.status == 409
    finally:
        env.close()


def test_the_token_is_sent_and_its_absence_is_refused(serve):
    srv = serve(token="s3cret", **SERVER)
    env = RemoteEnv(srv.base, token="s3cret")
    env.reset(seed=1)
    env.close()
    with pytest.raises(RemoteError) as refused:
        RemoteEnv(srv.base)
    assert refused.value.status == 401


def test_gymnasium_make_opens_a_remote_env(serve):
    srv = serve(**SERVER)
    env = gym.make("gymsite/Remote-v0", url=srv.base, env_id="FrozenLake-v1")
    try:
        obs, _ = env.reset(seed=0)
        assert obs == 0 and env.observation_space == gym.spaces.Discrete(16)
    finally:
        env.close()


def test_a_make_vec_training_loop_runs_unchanged_on_a_remote_vector_env(serve):
    srv = serve(**SERVER)
    remote = RemoteVectorEnv(srv.base, "CartPole-v1", num_envs=4)
    ref = gym.make_vec("CartPole-v1", num_envs=4, vectorization_mode="sync")
    try:
        assert remote.action_space == ref.action_space and remote.observation_space == ref.observation_space
        envs = [RecordEpisodeStatistics(remote), RecordEpisodeStatistics(ref)]
        got, want = (env.reset(seed=3)[0] for env in envs)
        assert data_equivalence(got, want)
        ended = 0
        for _ in range(12):
            actions = np.zeros(4, dtype=np.int64)
            (obs, rewards, terminated, truncated, info), (*reference, ref_info) = (env.step(actions) for env in envs)
            got = (obs, rewards, terminated, truncated)
            assert all(data_equivalence(a, b) for a, b in zip(got, reference, strict=True)), (got, reference)
            if "episode" in ref_info:
                assert np.array_equal(info["_episode"], ref_info["_episode"])
                assert np.array_equal(info["episode"]["l"], ref_info["episode"]["l"])
                ended += int(ref_info["_episode"].sum())
        assert ended == 4
    finally:
        remote.close()
        ref.close()


def test_a_same_step_remote_vector_env_gives_final_observations_as_arrays(serve):
    srv = serve(**SERVER)
    env = RemoteVectorEnv(srv.base, "CartPole-v1", num_envs=4, autoreset_mode="same_step")
    try:
        assert env.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
        env.reset(seed=3)
        for _ in range(8):  # sub-env 1 ends at step 8
            _, _, terminated, _, info = env.step(np.zeros(4, dtype=np.int64))
        assert terminated.tolist() == [False, True, False, False] and info["_final_obs"].dtype == np.bool_
        final = info["final_obs"]
        assert final.dtype == object and final[0] is None and final[1].dtype == np.float32
        assert final[1] in env.single_observation_space or np.abs(final[1][2]) > 0.2  # the pole has fallen
    finally:
        env.close()
