"""The engine runs without Django and knows the ledger only through the recorder port."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from gymenv.engine import DEFAULT_INSTANCE, Engine, RecorderSpec, RunPolicy
from gymenv.schemas import ResetProgress, StepProgress
from gymsite import serving

ROOT = Path(__file__).resolve().parent.parent


class ListRecorder:
    """An in-memory recorder: what the engine told it, in order."""

    def __init__(self, spec: RecorderSpec):
        self.spec, self.calls, self.steps = spec, [], 0

    @property
    def run_id(self) -> str:
        return "r1"

    def before_reset(self):
        self.calls.append("before_reset")

    def on_reset(self, *, seed, observation, info, options=None):
        self.calls.append(("on_reset", seed))
        self.steps = 0
        return ResetProgress(run_id="r1", episode_num=1, total_episodes=self.spec.policy.num_episodes,
                             max_steps=self.spec.policy.max_steps_per_episode)

    def before_step(self):
        self.calls.append("before_step")

    def on_step(self, *, action, observation, reward, terminated, truncated, info):
        self.steps += 1
        self.calls.append(("on_step", action))
        limit = self.steps >= self.spec.policy.max_steps_per_episode
        return truncated or limit, StepProgress(run_id="r1", episode_num=1, step_num=self.steps,
                                                completed_episodes=0, total_episodes=1, run_state="running")

    def progress(self):
        return StepProgress(run_id="r1", episode_num=1, step_num=self.steps, completed_episodes=0,
                            total_episodes=1, run_state="running")

    def on_error(self, message):
        self.calls.append(("on_error", message))

    def close(self, reason):
        self.calls.append(("close", reason))


def test_the_engine_drives_its_recorder_through_the_port_in_order():
    recorders = []

    def factory(spec):
        recorders.append(ListRecorder(spec))
        return recorders[-1]

    config = serving.engine_config(serving.ServerConfig(env_id="CartPole-v1", run_manager=False))
    policy = RunPolicy(num_episodes=1, max_steps_per_episode=2)
    engine = Engine(replace(config, run=policy, recorder_factory=factory))
    engine.start()
    inst = engine.get(DEFAULT_INSTANCE)
    inst.call_sync(inst.op_reset, 3)
    inst.call_sync(inst.op_step, 1)
    last = inst.call_sync(inst.op_step, 0)
    engine.shutdown("done here")
    (recorder,) = recorders
    assert recorder.spec.env_id == "CartPole-v1" and recorder.spec.policy.max_steps_per_episode == 2
    assert recorder.calls == ["before_reset", ("on_reset", 3), "before_step", ("on_step", 1),
                              "before_step", ("on_step", 0), ("close", "done here")]
    assert last.truncated and last.done and last.run_progress.step_num == 2  # the recorder's limit applies


def test_the_engine_imports_and_steps_without_django():
    code = (
        "import sys\n"
        "from gymenv.engine import DEFAULT_INSTANCE, Engine\n"
        "from gymsite import serving\n"
        "engine = Engine(serving.engine_config(serving.ServerConfig(env_id='CartPole-v1', run_manager=False)))\n"
        "engine.start()\n"
        "inst = engine.get(DEFAULT_INSTANCE)\n"
        "inst.call_sync(inst.op_reset, 1)\n"
        "print(inst.call_sync(inst.op_step, 1).reward)\n"
        "engine.shutdown()\n"
        "print(sorted(m for m in sys.modules if m == 'django' or m.startswith('django.')))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "SDL_VIDEODRIVER": "dummy"}  # no DJANGO_SETTINGS_MODULE
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1.0", "[]"]
