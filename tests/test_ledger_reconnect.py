"""A dropped PostgreSQL connection costs the ledger one reconnect, not a write or a run."""

import time

import psycopg
import pytest
from django.conf import settings
from django.db import DataError, IntegrityError, OperationalError, connection

from gymenv.engine import RecorderSpec, RunPolicy
from runs import ledger
from runs.ledger import LedgerWriter, ledger_call
from runs.manager import RunManager
from runs.models import Run, Step

pytestmark = [
    pytest.mark.skipif(settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
                       reason="a lost connection is a PostgreSQL failure; SQLite has none to lose"),
    pytest.mark.django_db(transaction=True),
]
WAIT = 20


@pytest.fixture(autouse=True, params=[False, True], ids=["writer-thread", "inline"])
def writer(request, monkeypatch):
    """A writer of this test's own (committing on its thread, or the caller's) that keeps its
    connection while idle, so the backend killed between two steps is the one the next step meets."""
    own = LedgerWriter(idle_close=3600, inline=request.param)
    monkeypatch.setattr(ledger, "_writer", own)
    yield own
    own.stop()


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def terminate(pid: int) -> None:
    """Kills the backend from a connection of its own and waits until it is gone."""
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as killer:
        assert killer.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0] is True
        deadline = time.monotonic() + WAIT
        while killer.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0]:
            assert time.monotonic() < deadline, f"backend {pid} still there after {WAIT} s"
            time.sleep(0.01)


def step(rm: RunManager, action: int) -> None:
    rm.before_step()
    rm.on_step(action=action, observation=[0.0] * 4, reward=1.0, terminated=False, truncated=False, info={})


def test_a_step_after_the_ledgers_backend_was_killed_succeeds_and_is_recorded():
    rm = RunManager(RecorderSpec(instance_id="default", env_id="CartPole-v1", env_kwargs={}, env_spec=None,
                                 reward_threshold=None, policy=RunPolicy(num_episodes=5, max_steps_per_episode=50)))
    rm.before_reset()
    rm.on_reset(seed=0, observation=[0.0] * 4, info={})
    step(rm, 0)
    killed = ledger_call(backend_pid)
    terminate(killed)
    step(rm, 1)
    assert list(Step.objects.order_by("step_num").values_list("step_num", flat=True)) == [1, 2]
    assert Run.objects.get().state == "running" and rm.status().current_step == 2
    assert ledger_call(backend_pid) != killed


def test_a_write_that_loses_its_connection_twice_fails_after_one_retry():
    calls = []

    def kill_own_backend():
        calls.append(1)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    with pytest.raises(OperationalError):
        ledger_call(kill_own_backend)
    assert len(calls) == 2
    assert ledger_call(backend_pid) > 0  # and the ledger writes on, on a fresh connection


def duplicate_run():
    run = Run.objects.create(instance_id="a", env_id="CartPole-v1", num_episodes=1, max_steps_per_episode=1)
    Run.objects.create(run_id=run.run_id, instance_id="b", env_id="CartPole-v1", num_episodes=1,
                       max_steps_per_episode=1)


def divide_by_zero():
    Run.objects.create(instance_id="a", env_id="CartPole-v1", num_episodes=1, max_steps_per_episode=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1/0")


@pytest.mark.parametrize("write, error", [(duplicate_run, IntegrityError), (divide_by_zero, DataError)])
def test_a_statement_that_fails_on_a_live_connection_is_not_retried(write, error):
    calls = []

    def counted():
        calls.append(1)
        write()

    with pytest.raises(error):
        ledger_call(counted)
    assert len(calls) == 1 and Run.objects.count() == 0
