"""The ledger's storage and its writer: compression, group commit, isolation of a failing write."""

import threading
import time
import uuid

import pytest
from django.db import IntegrityError, connection

from runs import services
from runs.ledger import LedgerWriter, ledger_stop
from runs.models import OBSERVATION_INLINE_BYTES, Episode, Run, Step
from tests.test_run_statistics import a_run


@pytest.fixture(autouse=True, scope="module")
def _ledger_writer_stopped():
    yield
    ledger_stop()


def frame(h=84, w=84):
    return [[[(x * 7 + y * 3 + c) % 256 for c in range(3)] for x in range(w)] for y in range(h)]


@pytest.mark.django_db
def test_a_large_image_observation_is_stored_compressed_and_read_back_exactly():
    run = a_run()
    episode = Episode.objects.get(run=run, episode_num=1)
    obs = frame()
    services.step_record(row=services.step_build(
        episode_id=episode.pk, step_num=99, action=0, observation=obs, reward=0.0, terminated=False,
        truncated=False, info={}, created_at=episode.started_at))
    row = Step.objects.get(episode=episode, step_num=99)
    assert row.observation_json is None
    assert bytes(row.observation_zlib)[:2] == b"\x78\x01"  # zlib, level 1
    assert len(bytes(row.observation_zlib)) < len(str(obs)) / 5
    assert row.observation == obs


@pytest.mark.parametrize("obs", [
    [[0.5 * i for i in range(30)] for _ in range(30)],  # a large float array: compressed JSON
    [[[1, 300]] * 600],  # integers beyond a byte: not an image
    {"image": [[1, 2]] * 600, "direction": 3},  # a Dict space
])
def test_large_non_image_observations_round_trip_exactly(obs):
    row = Step(**Step.pack_observation(obs))
    assert row.observation_json is None and row.observation == obs


def test_a_small_observation_stays_plain_json():
    packed = Step.pack_observation([0.5] * 10)
    assert packed == {"observation_json": [0.5] * 10, "observation_zlib": None}
    assert Step.pack_observation(list(range(OBSERVATION_INLINE_BYTES)))["observation_zlib"] is not None


@pytest.mark.django_db(transaction=True)
def test_the_writer_answers_only_after_the_commit():
    writer = LedgerWriter(inline=False)  # the queued path on either database: the caller is another connection
    gate, answered, seen = threading.Event(), threading.Event(), {}

    def create():
        return services.run_create(instance_id="i", env_id="CartPole-v1", env_kwargs={}, env_spec=None,
                                   num_episodes=1, max_steps_per_episode=1, success_threshold=None)

    def caller():
        try:
            run = writer.call(create)
            seen["committed"] = Run.objects.filter(pk=run.pk).exists()  # read on this thread's own connection
        finally:
            answered.set()
            connection.close()

    def holder():
        # In create's transaction, after it: keeps it open until the caller, answered, has read, which
        # must not happen before the commit (so this wait always runs to its bound).
        answered.wait(1)

    def hold_the_writer():
        holding.set()
        gate.wait(10)

    holding = threading.Event()
    threads = [threading.Thread(target=writer.call, args=(hold_the_writer,))]
    try:
        threads[0].start()
        assert holding.wait(10)  # the writer is busy: the next two writes queue up into one group
        threads.append(threading.Thread(target=caller))
        threads[-1].start()
        wait_until(lambda: writer._queue.qsize() == 1)
        threads.append(threading.Thread(target=writer.call, args=(holder,)))
        threads[-1].start()
        wait_until(lambda: writer._queue.qsize() == 2)
        gate.set()
        for t in threads:
            t.join(10)
    finally:
        gate.set()
        writer.stop()
    assert seen == {"committed": True}


@pytest.mark.django_db(transaction=True)
def test_writes_queued_together_commit_together_and_a_failing_one_fails_alone():
    writer = LedgerWriter(inline=False)  # the queued path, whatever the database
    gate, taken, results, batches = threading.Event(), threading.Event(), {}, []
    try:
        run = writer.call(lambda: services.run_create(
            instance_id="i", env_id="CartPole-v1", env_kwargs={}, env_spec=None, num_episodes=1,
            max_steps_per_episode=1, success_threshold=None))
        now = run.created_at

        def blocker():
            taken.set()
            gate.wait(10)  # holds the writer so the next writes queue up into one group

        def episode(num):
            def write():
                batches.append(num)
                return services.episode_open(run_id=run.pk, episode_num=num, seed=None, observation=0, info={},
                                             started_at=now, first=False)
            return write

        def submit(name, fn):
            try:
                results[name] = writer.call(fn)
            except Exception as exc:  # noqa: BLE001
                results[name] = exc

        threads = [threading.Thread(target=submit, args=("blocker", blocker))]
        threads[0].start()
        assert taken.wait(10)  # the blocker is taken by the writer
        # 1, 2 and a duplicate 2 (unique constraint) queue up behind it
        for name, num in (("one", 1), ("two", 2), ("dup", 2)):
            threads.append(threading.Thread(target=submit, args=(name, episode(num))))
            threads[-1].start()
        wait_until(lambda: writer._queue.qsize() == 3)
        gate.set()
        for t in threads:
            t.join(10)
    finally:
        writer.stop()
    assert isinstance(results["dup"], IntegrityError)
    assert isinstance(results["one"], int) and isinstance(results["two"], int)
    assert sorted(Episode.objects.filter(run=run).values_list("episode_num", flat=True)) == [1, 2]
    assert batches[:3] == [1, 2, 2]  # first tried as one group, then one by one


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("inline", [True, False])
def test_a_write_made_from_inside_a_write_runs_inline_instead_of_deadlocking(inline):
    writer = LedgerWriter(inline=inline)
    try:
        assert writer.call(lambda: writer.call(lambda: 42)) == 42
    finally:
        writer.stop()


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within the time limit"
        time.sleep(0.001)


@pytest.mark.django_db
def test_interrupting_stale_runs_keeps_their_partial_episode_summed_from_its_steps():
    run = a_run(episodes=2, open_steps=3)  # one ended episode of 4 steps, one open with 3
    assert services.runs_interrupt_stale() == 1
    run.refresh_from_db()
    assert run.state == "error" and run.error == "interrupted" and run.ended_at is not None
    open_ep = run.episodes.get(episode_num=2)
    assert (open_ep.total_steps, open_ep.total_reward, open_ep.final_reward) == (3, 1.5, 0.5)
    assert open_ep.abandoned and not open_ep.done and open_ep.ended_at is not None
    assert (run.total_steps, run.total_reward, run.completed_episodes) == (7, 5.5, 2)


@pytest.mark.django_db
def test_interrupting_stale_runs_leaves_finished_and_kept_runs_alone():
    done = a_run(episodes=1, state="completed")
    live = a_run(episodes=1)
    paused = a_run(episodes=1, state="paused")
    assert services.runs_interrupt_stale(keep=(live.pk,)) == 1
    assert Run.objects.get(pk=done.pk).state == "completed"
    assert Run.objects.get(pk=live.pk).state == "running"
    assert Run.objects.get(pk=paused.pk).state == "error"


@pytest.mark.django_db
def test_interrupting_a_run_that_never_stepped_keeps_zero_totals():
    run = a_run(episodes=1, open_steps=0)
    services.runs_interrupt_stale()
    ep = Episode.objects.get(run=run, episode_num=1)
    assert ep.total_steps == 0 and ep.final_reward is None and ep.ended_at == ep.started_at


def test_run_ids_are_uuids():
    assert isinstance(Run().pk, uuid.UUID)
