"""GymService and GymHTTPServer: the same server as runserver_gym, from Python."""

import subprocess
import sys
from pathlib import Path

import pytest

from gymenv import GymService
from gymsite.errors import InvalidAction, OutOfOrder, ResetRequired

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def service(transactional_db):
    made = GymService("CartPole-v1", num_episodes=2, max_steps_per_episode=3)
    yield made
    made.shutdown()


def test_gym_service_answers_the_rest_bodies_and_records_the_run(service):
    reset = service.reset(seed=1)
    assert reset["success"] is True and reset["run_progress"]["total_episodes"] == 2
    last = [service.step(1) for _ in range(3)][-1]
    assert last["truncated"] is True and last["done"] is True and last["run_progress"]["step_num"] == 3
    stats = service.run_statistics()
    assert stats["completed_episodes"] == 1 and stats["total_steps"] == 3


def test_gym_service_takes_the_expected_numbers_of_retry_safe_calls(service):
    first = service.reset(seed=2, expected_episode=1)
    assert service.reset(seed=2, expected_episode=1) == {**first, "repeated": True}
    step = service.step(1, expected_step=1)
    assert service.step(1, expected_step=1) == {**step, "repeated": True}
    with pytest.raises(OutOfOrder):
        service.step(1, expected_step=3)


def test_gym_service_raises_the_error_rest_would_answer(service):
    with pytest.raises(ResetRequired):
        service.step(0)
    service.reset(seed=1)
    with pytest.raises(InvalidAction, match=r"Discrete\(2\)"):
        service.step(5)


@pytest.mark.parametrize("options, needle", [
    ({"env_id": "NoSuchEnv-v0"}, "unknown env id"),
    ({"env_id": "CartPole-v1", "host": "0.0.0.0"}, "without a token"),
    ({"env_id": "CartPole-v1", "num_episodes": -1}, "--num-episodes must be 0 (no limit) or more"),
    ({"env_id": "CartPole-v1", "allow_env": ("NoSuchEnv-v0",)}, "--allow-env NoSuchEnv-v0"),
])
def test_gym_http_server_refuses_what_runserver_gym_refuses_in_one_line(tmp_path, options, needle):
    code = (f"from gymenv import GymHTTPServer\n"
            f"options = {options!r}\n"
            f"GymHTTPServer(options.pop('env_id'), **options).run(port=1)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
                               "GYMSITE_DATA_DIR": str(tmp_path)})
    lines = done.stderr.strip().splitlines()
    assert done.returncode != 0 and len(lines) == 1 and needle in lines[0], done.stderr
    assert lines[0].startswith("gymsite: ")
