"""Every recorded episode is reproducible (SPEC 14): a reset without a seed gets one drawn by the server,
passed to env.reset, recorded and returned as run_progress.seed."""

import gymnasium as gym
from gymnasium.utils.env_checker import data_equivalence

from runs.models import Episode


def test_a_seedless_reset_is_gymnasiums_episode_for_the_seed_it_returns_and_records(door):
    d = door(env_id="CartPole-v1", run_manager=True)
    seeds = []
    for _ in range(3):
        r = d.post("/reset", {})
        seed = r["run_progress"]["seed"]
        assert isinstance(seed, int) and 0 <= seed < 2**32
        env = gym.make("CartPole-v1")
        obs, _ = env.reset(seed=seed)
        assert data_equivalence(r["observation"], obs.tolist())
        step = d.post("/step", {"action": 1})
        assert data_equivalence(step["observation"], env.step(1)[0].tolist())
        seeds.append(seed)
    assert len(set(seeds)) == 3
    assert list(Episode.objects.order_by("episode_num").values_list("seed", flat=True)) == seeds


def test_a_clients_seed_is_returned_as_sent(door):
    d = door(env_id="CartPole-v1", run_manager=True)
    assert d.post("/reset", {"seed": 2**100})["run_progress"]["seed"] == 2**100
    assert Episode.objects.get().seed == 2**100
