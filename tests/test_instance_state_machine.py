"""One instance driven in any order (reset, step, close, run reset/pause/resume, good and bad inputs)
through the in-memory REST tier, against a model: gymnasium's own CartPole-v1 with the same seeds and
actions, and the run as SPEC 7 has it. After every rule the answers and the ledger agree with it."""

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from gymsite import serving
from runs.models import Episode, Run, Step
from tests.rest_memory import MemoryREST

NUM_EPISODES, MAX_STEPS = 3, 12
BAD_SEEDS = ["5", -1, True, 2**128, 1.5]
BAD_ACTIONS = [2, -1, "1", 1.5, True, None, [0]]


@dataclass
class ModelRun:
    state: str = "running"
    episodes: list[list[float]] = field(default_factory=list)  # each episode's step rewards, in order
    completed: int = 0
    open: bool = False  # an episode is in progress

    def end_episode(self) -> None:
        self.open = False
        self.completed += 1
        if self.completed >= NUM_EPISODES:
            self.state = "completed"


class OneInstance(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        config = serving.ServerConfig(env_id="CartPole-v1", num_episodes=NUM_EPISODES,
                                      max_steps_per_episode=MAX_STEPS)
        self.rest = MemoryREST(serving.build_engine(serving.resolve(config)), config)
        self.reference = gym.make("CartPole-v1")
        self.synced = False  # the reference's random state is the server env's (both seeded alike since made)
        self.needs_reset, self.episode_over = True, False
        self.run_id = self.rest.get("/run/status").body["run_id"]
        self.runs = {self.run_id: ModelRun()}
        self.observation = None

    def teardown(self):
        self.rest.close()
        self.reference.close()

    @property
    def run(self) -> ModelRun:
        return self.runs[self.run_id]

    def refused(self, reply, status: int, code: str) -> None:
        assert (reply.status, reply.body["code"]) == (status, code), reply.body

    def run_refusal(self) -> tuple[int, str] | None:
        return {"paused": (409, "run_paused"), "completed": (409, "run_completed"),
                "error": (409, "run_error")}.get(self.run.state)

    @rule(seed=st.none() | st.integers(0, 2**32 - 1))
    def reset(self, seed):
        reply = self.rest.post("/reset", {"seed": seed})
        refusal = self.run_refusal()
        if refusal is None and self.run.open and self.run.completed + 1 >= NUM_EPISODES:
            self.run.end_episode()  # a reset abandons the run's last episode: that completes the run
            refusal = (409, "run_completed")
        if refusal is not None:
            return self.refused(reply, *refusal)
        assert reply.status == 200, reply.body
        if self.run.open:
            self.run.end_episode()
        self.run.episodes.append([])
        self.run.open = True
        # Without a seed the server draws one and says which (SPEC 14): the reference takes the same.
        drawn = reply.body["run_progress"]["seed"]
        assert seed is None or drawn == seed
        self.observation, _ = self.reference.reset(seed=drawn)
        self.synced = True
        self.needs_reset, self.episode_over = False, False
        assert reply.body["run_progress"]["episode_num"] == len(self.run.episodes)
        self.check_observation(reply.body["observation"])

    @rule(seed=st.sampled_from(BAD_SEEDS))
    def reset_with_a_bad_seed(self, seed):
        self.refused(self.rest.post("/reset", {"seed": seed}), 422, "invalid_argument")

    @rule(action=st.sampled_from([0, 1]))
    def step(self, action):
        reply = self.rest.post("/step", {"action": action})
        if refusal := self.step_refusal():
            return self.refused(reply, *refusal)
        assert reply.status == 200, reply.body
        self.observation, reward, terminated, truncated, _ = self.reference.step(action)
        self.run.episodes[-1].append(float(reward))
        truncated = truncated or len(self.run.episodes[-1]) >= MAX_STEPS
        body = reply.body
        self.check_observation(body["observation"])
        assert (body["reward"], body["terminated"], body["truncated"]) == (reward, terminated, truncated), body
        if terminated or truncated:
            self.episode_over = True
            self.run.end_episode()
        assert body["run_progress"]["step_num"] == len(self.run.episodes[-1])
        assert body["run_progress"]["run_state"] == self.run.state

    @rule(action=st.sampled_from(BAD_ACTIONS))
    def step_with_an_invalid_action(self, action):
        reply = self.rest.post("/step", {"action": action})
        refusal = self.step_refusal()
        if refusal is None or refusal[1] not in ("reset_required", "episode_over"):
            refusal = (422, "invalid_action")  # checked before the run's state
        self.refused(reply, *refusal)

    @rule()
    def close(self):
        assert self.rest.post("/close").body == {"success": True, "status": "closed"}
        self.reference = gym.make("CartPole-v1")  # the server's reset re-creates its env, unseeded
        self.synced, self.needs_reset, self.episode_over = False, True, False

    @rule()
    def run_reset(self):
        reply = self.rest.post("/run/reset")
        assert reply.status == 200, reply.body
        if self.run.state not in ("completed", "error"):
            self.run.state = "stopped"  # ended on purpose before it completed
            if self.run.open:
                self.run.open = False
                self.run.completed += 1
        self.run_id = reply.body["run_id"]
        self.runs[self.run_id] = ModelRun()

    @rule()
    def run_pause(self):
        reply = self.rest.post("/run/pause")
        if self.run.state in ("completed", "error"):
            return self.refused(reply, *self.run_refusal())
        self.run.state = "paused"
        assert (reply.status, reply.body["state"]) == (200, "paused"), reply.body

    @rule()
    def run_resume(self):
        reply = self.rest.post("/run/resume")
        if self.run.state in ("completed", "error"):
            return self.refused(reply, *self.run_refusal())
        self.run.state = "running"
        assert (reply.status, reply.body["state"]) == (200, "running"), reply.body

    def step_refusal(self) -> tuple[int, str] | None:
        """SPEC 5 and 7, in the server's order: the env's state, then the run's."""
        if self.needs_reset:
            return 409, "reset_required"
        if self.episode_over:
            return 409, "episode_over"
        if refusal := self.run_refusal():
            return refusal
        if not self.run.open:
            return 409, "reset_required"
        return None

    def check_observation(self, observation) -> None:
        if self.synced:
            assert np.allclose(observation, self.observation, rtol=0, atol=1e-6), (observation, self.observation)

    @invariant()
    def the_run_status_and_the_ledger_agree_with_the_model(self):
        status = self.rest.get("/run/status").body
        assert (status["run_id"], status["state"], status["completed_episodes"]) == \
            (self.run_id, self.run.state, self.run.completed), status
        for run_id, model in self.runs.items():
            if not model.episodes:  # history keeps no run without an episode
                assert not Run.objects.filter(pk=run_id).exists(), run_id
                continue
            row = Run.objects.get(pk=run_id)
            assert (row.state, row.completed_episodes) == (model.state, model.completed), (run_id, row.state)
            assert Episode.objects.filter(run_id=run_id).count() == len(model.episodes)
            steps = Step.objects.filter(episode__run_id=run_id).order_by("episode__episode_num", "step_num")
            recorded = [(s.episode.episode_num, s.step_num, s.reward) for s in steps.select_related("episode")]
            expected = [(e, s, r) for e, rewards in enumerate(model.episodes, 1) for s, r in enumerate(rewards, 1)]
            assert recorded == expected, run_id


@pytest.mark.django_db(transaction=True)
def test_one_instance_in_any_order_answers_and_records_what_the_model_says():
    run_state_machine_as_test(OneInstance, settings=settings(
        max_examples=40, stateful_step_count=30, derandomize=True, database=None, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))
