"""A starting process closes only the runs of dead processes, not those of others sharing the database."""

import os
import socket
import subprocess
import sys

import pytest
from django.utils import timezone

from runs import services
from runs.models import Episode, Run

HOST = socket.gethostname()


def a_run(owner: str, *, episodes: int = 1) -> Run:
    run = Run.objects.create(instance_id="default", env_id="CartPole-v1", num_episodes=1,
                             max_steps_per_episode=10, owner=owner)
    for num in range(1, episodes + 1):
        Episode.objects.create(run=run, episode_num=num, started_at=timezone.now())
    return run


def state(run: Run) -> str:
    run.refresh_from_db()
    return run.state


@pytest.fixture
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid no longer names a process
    return child.pid


@pytest.fixture
def live_pid():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield child.pid
    child.kill()
    child.wait()


@pytest.mark.django_db
def test_a_run_created_here_is_owned_by_this_host_and_process():
    run = services.run_create(instance_id="default", env_id="CartPole-v1", env_kwargs={}, env_spec=None,
                              num_episodes=1, max_steps_per_episode=10, success_threshold=None)
    assert run.owner == services.process_owner() == f"{HOST}:{os.getpid()}"


@pytest.mark.django_db
def test_a_run_of_a_dead_process_on_this_host_is_interrupted(dead_pid):
    run = a_run(f"{HOST}:{dead_pid}")
    assert services.runs_interrupt_stale(keep=()) == 1
    run.refresh_from_db()
    assert (run.state, run.error) == ("error", "interrupted")


@pytest.mark.django_db
def test_a_run_of_a_live_other_process_on_this_host_is_left_running(live_pid):
    run = a_run(f"{HOST}:{live_pid}")
    assert services.runs_interrupt_stale(keep=()) == 0
    assert state(run) == "running"


@pytest.mark.django_db
def test_a_run_of_another_host_is_left_running(dead_pid):
    run = a_run(f"{HOST}-elsewhere:{dead_pid}")
    assert services.runs_interrupt_stale(keep=()) == 0
    assert state(run) == "running"


@pytest.mark.django_db
@pytest.mark.parametrize("owner", ["", "no-pid", f"{HOST}:", ":123", f"{HOST}:0"])
def test_a_run_without_a_recognisable_owner_is_interrupted(owner):
    run = a_run(owner)
    assert services.runs_interrupt_stale(keep=()) == 1
    assert state(run) == "error"


@pytest.mark.django_db
def test_this_processs_live_runs_are_kept_and_its_other_runs_interrupted():
    live, left = a_run(services.process_owner()), a_run(services.process_owner())
    assert services.runs_interrupt_stale(keep=(live.pk,)) == 1
    assert (state(live), state(left)) == ("running", "error")


@pytest.mark.django_db
def test_a_dead_processs_run_that_never_had_an_episode_is_deleted(dead_pid):
    run = a_run(f"{HOST}:{dead_pid}", episodes=0)
    assert services.runs_interrupt_stale(keep=()) == 1
    assert not Run.objects.filter(pk=run.pk).exists()
