"""Which episodes count as successes (SPEC 7): the env's verdict, the threshold, a positive terminal reward."""

import pytest

from gymenv.engine import RecorderSpec, RunPolicy
from runs.ledger import ledger_stop
from runs.manager import RunManager, episode_success
from runs.models import Episode


def verdict(info=None, total_reward=0.0, threshold=None, terminated=False, truncated=False, final_reward=None):
    return episode_success(info=info or {}, total_reward=total_reward, threshold=threshold,
                           terminated=terminated, truncated=truncated, final_reward=final_reward)


def test_the_envs_is_success_wins_over_the_threshold():
    assert verdict(info={"is_success": True}, total_reward=-5.0, threshold=10.0) is True
    assert verdict(info={"is_success": False}, total_reward=50.0, threshold=10.0, terminated=True,
                   final_reward=1.0) is False


def test_a_null_is_success_falls_back_to_the_threshold():
    assert verdict(info={"is_success": None}, total_reward=11.0, threshold=10.0) is True


def test_without_a_verdict_the_return_is_compared_with_the_threshold():
    assert verdict(total_reward=475.0, threshold=475.0) is True
    assert verdict(total_reward=474.0, threshold=475.0, terminated=True, final_reward=1.0) is False


def test_without_a_threshold_a_positive_terminal_reward_is_a_success():
    assert verdict(terminated=True, final_reward=1.0, total_reward=1.0) is True
    assert verdict(terminated=True, final_reward=0.0, total_reward=0.0) is False
    assert verdict(truncated=True, final_reward=1.0, total_reward=1.0) is False
    assert verdict(terminated=True, truncated=True, final_reward=1.0) is False


@pytest.fixture(autouse=True, scope="module")
def _ledger_writer_stopped():
    yield
    ledger_stop()


@pytest.mark.django_db(transaction=True)
class TestThroughTheManager:
    def play(self, *, threshold=None, reward_threshold=None, rewards=(1.0,), terminated=True, info=None):
        rm = RunManager(RecorderSpec(instance_id="i", env_id="FrozenLake-v1", env_kwargs={}, env_spec=None,
                        reward_threshold=reward_threshold,
                        policy=RunPolicy(num_episodes=5, max_steps_per_episode=100, success_threshold=threshold)))
        rm.before_reset()
        rm.on_reset(seed=None, observation=0, info={})
        for i, reward in enumerate(rewards):
            last = i == len(rewards) - 1
            rm.on_step(action=0, observation=0, reward=reward, terminated=terminated and last, truncated=False,
                       info=(info or {}) if last else {})
        return Episode.objects.get(run_id=rm.run_id).success, rm.statistics().model_dump()

    def test_the_specs_reward_threshold_applies_by_default(self):
        success, stats = self.play(reward_threshold=3.0, rewards=(1.0, 1.0))
        assert success is False and stats["successful_episodes"] == 0

    def test_the_operators_threshold_overrides_the_specs(self):
        success, stats = self.play(threshold=2.0, reward_threshold=3.0, rewards=(1.0, 1.0))
        assert success is True and stats["success_rate"] == 1.0 and stats["success_threshold"] == 2.0

    def test_is_success_at_the_last_step_decides(self):
        success, _ = self.play(reward_threshold=100.0, rewards=(0.0,), info={"is_success": True})
        assert success is True

    def test_a_positive_terminal_reward_decides_without_threshold(self):
        assert self.play(rewards=(0.0, 0.0, 1.0))[0] is True
        assert self.play(rewards=(0.0,))[0] is False
