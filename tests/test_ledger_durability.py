"""The ledger's promises under load: answered steps survive SIGKILL, threads don't trip over each other,
memory stays flat."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path

import pytest

from gymenv.engine import RecorderSpec, RunPolicy
from runs.ledger import ledger_stop
from runs.manager import RunManager
from runs.models import Run, Step

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="module")
def _ledger_writer_stopped():
    yield
    ledger_stop()


def manager(instance_id="default", num_episodes=1000, max_steps=50) -> RunManager:
    return RunManager(RecorderSpec(instance_id=instance_id, env_id="CartPole-v1", env_kwargs={}, env_spec=None,
                      reward_threshold=None,
                      policy=RunPolicy(num_episodes=num_episodes, max_steps_per_episode=max_steps)))


def play(rm: RunManager, steps: int, max_steps: int = 50) -> None:
    for i in range(steps):
        if i % max_steps == 0:
            rm.before_reset()
            rm.on_reset(seed=i, observation=[0.0] * 4, info={})
        rm.before_step()
        rm.on_step(action=i % 2, observation=[0.1, 0.2, 0.3, 0.4], reward=1.0, terminated=False,
                   truncated=False, info={})


@pytest.mark.django_db(transaction=True)
def test_managers_on_many_threads_record_every_step_without_locking_errors():
    managers = [manager(f"inst-{i}") for i in range(8)]
    errors, stop = [], threading.Event()

    def drive(rm):
        try:
            play(rm, 260)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    def watch():
        # Request threads read the managers while they step. (Database reads beside the writer
        # are checked on a file database below: the in-memory test database's shared cache
        # locks whole tables, which WAL files never do.)
        while not stop.is_set():
            for rm in managers:
                rm.status().model_dump()

    threads = [threading.Thread(target=drive, args=(rm,)) for rm in managers]
    watcher = threading.Thread(target=watch)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stop.set()
    watcher.join(10)
    assert errors == []
    for rm in managers:
        assert Step.objects.filter(episode__run_id=rm.run_id).count() == 260
        run = Run.objects.get(pk=rm.run_id)
        assert (run.completed_episodes, run.total_steps) == (5, 250)  # 5 episodes hit the 50-step limit
        assert rm.status().model_dump()["current_episode"] == 6 and rm.status().model_dump()["current_step"] == 10
        assert rm.statistics().model_dump()["total_steps"] == 260


@pytest.mark.django_db(transaction=True)
def test_the_manager_keeps_nothing_per_step_in_memory():
    rm = manager(max_steps=100)
    play(rm, 300, max_steps=100)  # warm up caches, the writer thread and its connection
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        play(rm, 3000, max_steps=100)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert growth < 64 * 1024, f"{growth} bytes more after 3000 steps"
    assert Step.objects.filter(episode__run_id=rm.run_id).count() == 3300


# A server process in miniature: steps a run and prints each step once on_step has returned it.
CHILD = """
import django, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "gymsite.settings"
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from gymenv.engine import RecorderSpec, RunPolicy
from runs.manager import RunManager
rm = RunManager(RecorderSpec(instance_id="default", env_id="CartPole-v1", env_kwargs={}, env_spec=None,
                             reward_threshold=None, policy=RunPolicy(num_episodes=1000, max_steps_per_episode=50)))
print(rm.run_id, flush=True)
while True:
    rm.before_reset()
    rm.on_reset(seed=None, observation=[0.0] * 4, info={})
    for _ in range(50):
        rm.before_step()
        rm.on_step(action=1, observation=[0.1] * 4, reward=1.0, terminated=False, truncated=False, info={})
        print("answered", flush=True)
"""

RESTART = """
import django, json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "gymsite.settings"
django.setup()
from runs.services import runs_interrupt_stale
from runs.selectors import run_statistics
runs_interrupt_stale()
print(run_statistics(run_id=sys.argv[1]).model_dump_json())
"""


# Eight instances stepping and a reader of their statistics, in a process of its own on a file database.
CONCURRENT = """
import django, os, sys, threading
os.environ["DJANGO_SETTINGS_MODULE"] = "gymsite.settings"
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from gymenv.engine import RecorderSpec, RunPolicy
from runs.manager import RunManager
managers = [RunManager(RecorderSpec(instance_id=f"i{n}", env_id="CartPole-v1", env_kwargs={}, env_spec=None,
                       reward_threshold=None, policy=RunPolicy(num_episodes=100, max_steps_per_episode=20)))
            for n in range(8)]
errors, done = [], threading.Event()

def drive(rm):
    try:
        for i in range(200):
            if i % 20 == 0:
                rm.before_reset()
                rm.on_reset(seed=i, observation=[0.0] * 4, info={})
            rm.before_step()
            rm.on_step(action=1, observation=[0.1] * 4, reward=1.0, terminated=False, truncated=False, info={})
    except Exception as exc:
        errors.append(repr(exc))

def read():
    try:
        while not done.is_set():
            for rm in managers:
                rm.statistics().model_dump()
    except Exception as exc:
        errors.append(repr(exc))
    finally:
        connection.close()

drivers = [threading.Thread(target=drive, args=(rm,)) for rm in managers]
readers = [threading.Thread(target=read) for _ in range(2)]
for t in drivers + readers:
    t.start()
for t in drivers:
    t.join()
done.set()
for t in readers:
    t.join()
print(errors, [rm.statistics().model_dump()["total_steps"] for rm in managers])
"""


def test_statistics_read_beside_eight_stepping_instances_without_locking_errors(server_database_url):
    env = dict(os.environ, DATABASE_URL=server_database_url, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", CONCURRENT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == f"[] {[200] * 8}"


def count_steps(url: str, run_id: str) -> int:
    sql = ("SELECT count(*) FROM runs_step s JOIN runs_episode e ON s.episode_id = e.id "
           "WHERE e.run_id = {}")
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///"):]) as conn:
            return conn.execute(sql.format("?"), (run_id.replace("-", ""),)).fetchone()[0]
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://")) as conn:
        return conn.execute(sql.format("%s"), (run_id,)).fetchone()[0]


def test_every_answered_step_survives_a_sigkill_and_the_next_start_closes_the_run(server_database_url):
    env = dict(os.environ, DATABASE_URL=server_database_url, PYTHONPATH=str(ROOT))
    with subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          text=True) as child:
        try:
            run_id = child.stdout.readline().strip()
            answered = 0
            while answered < 420:  # 8 full episodes and 20 steps into the 9th
                assert child.stdout.readline() == "answered\n"
                answered += 1
            child.send_signal(signal.SIGKILL)
            answered += child.stdout.read().count("answered\n")  # answers still in the pipe were given too
        finally:
            child.kill()
            child.wait(10)
    recorded = count_steps(server_database_url, run_id)
    assert answered <= recorded <= answered + 1  # at most one committed step whose answer was cut off

    out = subprocess.run([sys.executable, "-c", RESTART, run_id], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True)
    stats = json.loads(out.stdout.strip().splitlines()[-1])
    assert stats["state"] == "error" and stats["error"] == "interrupted"
    assert stats["total_steps"] == recorded
    last = stats["episodes"][-1]
    assert last["total_steps"] == recorded - 50 * (len(stats["episodes"]) - 1) and last["abandoned"] is True
    assert all(e["total_steps"] == 50 and e["truncated"] for e in stats["episodes"][:-1])
