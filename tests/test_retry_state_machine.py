"""Retries as a state machine (hypothesis): whatever mix of fresh, retried and out-of-turn resets and steps
a client sends, an answer is either new (the env moved once), a repetition of the last one (nothing moved)
or 409 out_of_order (nothing moved), and the env stays on gymnasium's trajectory. The engine alone, no Django."""

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from gymenv.engine import Instance
from gymsite.errors import EpisodeOver, OutOfOrder, ResetRequired

KINDS = st.sampled_from(["none", "next", "retry", "behind", "ahead"])


class Retries(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.inst = Instance(instance_id="t", env_id="CartPole-v1", env_kwargs={}, render_mode=None, policy=None,
                             recorder_factory=None, call_timeout=10)
        self.inst.op_open()
        self.reference = gym.make("CartPole-v1")
        self.episode = self.step_num = 0
        self.last: tuple | None = None  # ("reset", seed) or ("step", action), with its answer
        self.over = False
        self.observation = None

    def teardown(self):
        self.inst.op_close()
        self.reference.close()

    def number(self, kind: str, current: int) -> int | None:
        return {"none": None, "next": current + 1, "retry": current, "behind": current - 1,
                "ahead": current + 2}[kind]

    @rule(seed=st.integers(0, 3), kind=KINDS)
    def reset(self, seed, kind):
        expected = self.number(kind, self.episode)
        is_retry = expected is not None and expected == self.episode and self.last is not None \
            and self.last[0] == "reset" and self.last[1] == seed
        fresh = expected is None or expected == self.episode + 1
        if not fresh and not is_retry:
            if expected is not None and expected < 1:
                return
            with pytest.raises(OutOfOrder):
                self.inst.op_reset(seed=seed, expected_episode=expected)
            return
        answer = self.inst.op_reset(seed=seed, expected_episode=expected)
        if is_retry and not fresh:
            assert answer.repeated and np.array_equal(answer.observation, self.last[2].observation)
            return
        assert not answer.repeated
        self.observation, _ = self.reference.reset(seed=seed)
        self.episode, self.step_num, self.over = self.episode + 1, 0, False
        self.last = ("reset", seed, answer)
        assert np.allclose(answer.observation, self.observation, atol=0, rtol=0)

    @precondition(lambda self: self.episode > 0)
    @rule(action=st.sampled_from([0, 1]), kind=KINDS)
    def step(self, action, kind):
        expected = self.number(kind, self.step_num)
        is_retry = expected is not None and expected == self.step_num and self.last is not None \
            and self.last[0] == "step" and self.last[1] == action
        fresh = expected is None or expected == self.step_num + 1
        if expected is not None and expected < 1:
            return
        if not fresh and not is_retry:
            with pytest.raises(OutOfOrder):
                self.inst.op_step(action, expected_step=expected)
            return
        if is_retry and not fresh:
            answer = self.inst.op_step(action, expected_step=expected)
            assert answer.repeated and answer.observation == self.last[2].observation
            return
        if self.over:
            with pytest.raises((EpisodeOver, ResetRequired)):
                self.inst.op_step(action, expected_step=expected)
            return
        answer = self.inst.op_step(action, expected_step=expected)
        assert not answer.repeated
        self.observation, reward, terminated, truncated, _ = self.reference.step(action)
        self.step_num += 1
        self.over = terminated or truncated
        self.last = ("step", action, answer)
        assert np.allclose(answer.observation, self.observation, atol=0, rtol=0) and answer.reward == reward

    @invariant()
    def the_instance_stands_where_the_model_does(self):
        assert (self.inst.answers.episode_num, self.inst.answers.step_num) == (self.episode, self.step_num)


def test_retries_in_any_order_never_move_the_env_twice():
    run_state_machine_as_test(Retries, settings=settings(
        max_examples=60, stateful_step_count=40, derandomize=True, database=None, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
