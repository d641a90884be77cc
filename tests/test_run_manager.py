"""The run manager's states and transitions (SPEC 7), checked against the rows it commits."""

import pytest

from gymenv.engine import RecorderSpec, RunPolicy
from gymsite.errors import InstanceClosed, LedgerFailed, ResetRequired, RunCompleted, RunEnded, RunPaused
from runs.ledger import ledger_stop
from runs.live import live_manager
from runs.manager import RunManager
from runs.models import Episode, Run, Step

# The manager writes through the ledger writer thread: tests need committed, visible rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True, scope="module")
def _ledger_writer_stopped():
    yield
    ledger_stop()  # frees the writer's connection, or PostgreSQL cannot drop the test database


def manager(num_episodes=3, max_steps=5, threshold=None, reward_threshold=None) -> RunManager:
    return RunManager(RecorderSpec(instance_id="default", env_id="CartPole-v1", env_kwargs={},
                                   env_spec={"id": "CartPole-v1"}, reward_threshold=reward_threshold,
                      policy=RunPolicy(num_episodes=num_episodes, max_steps_per_episode=max_steps,
                                       success_threshold=threshold)))


def reset(rm, seed=None):
    rm.before_reset()
    return rm.on_reset(seed=seed, observation=[0.0, 0.0], info={}).model_dump()


def step(rm, reward=1.0, terminated=False, truncated=False, info=None, action=1):
    rm.before_step()
    truncated, progress = rm.on_step(action=action, observation=[0.1, 0.2], reward=reward, terminated=terminated,
                                     truncated=truncated, info=info or {})
    return truncated, progress.model_dump()


def test_a_new_run_is_running_and_reaches_the_ledger_with_its_first_episode():
    rm = manager()
    assert not Run.objects.filter(pk=rm.run_id).exists()  # history keeps no run without an episode
    assert rm.status().model_dump() == {
        "success": True, "run_id": rm.run_id, "state": "running", "current_episode": 0, "current_step": 0,
        "completed_episodes": 0, "total_episodes": 3, "progress": {"episodes": "0/3", "percentage": 0.0},
    }
    stats = rm.statistics()
    assert (stats.run_id, stats.state, stats.episodes, stats.start_time) == (rm.run_id, "running", [], None)
    reset(rm)
    run = Run.objects.get(pk=rm.run_id)
    assert run.state == "running" and run.env_id == "CartPole-v1" and run.num_episodes == 3
    assert run.env_spec == {"id": "CartPole-v1"} and run.started_at is not None


def test_a_paused_run_reaches_the_ledger_paused():
    rm = manager()
    rm.pause()
    assert not Run.objects.filter(pk=rm.run_id).exists()
    rm.resume()
    rm.pause()
    rm.resume()
    reset(rm)
    assert Run.objects.get(pk=rm.run_id).state == "running"


def test_a_run_without_an_episode_leaves_nothing_when_reset_or_closed():
    rm = manager()
    first = rm.run_id
    rm.reset()
    rm.close("instance deleted")
    assert not Run.objects.filter(pk__in=[first, rm.run_id]).exists()


def test_with_no_episode_limit_the_run_never_completes_by_count():
    rm = manager(num_episodes=0, max_steps=1)
    for _ in range(5):
        reset(rm)
        step(rm)  # the step limit ends each episode
    status = rm.status()
    assert (status.state, status.completed_episodes, status.total_episodes) == ("running", 5, 0)
    assert status.progress.episodes == "5 (no limit)" and status.progress.percentage == 0.0


def test_reset_opens_the_next_episode_and_reports_run_progress():
    rm = manager()
    progress = reset(rm, seed=7)
    assert progress == {"run_id": rm.run_id, "episode_num": 1, "total_episodes": 3, "max_steps": 5, "seed": 7}
    episode = Episode.objects.get(run_id=rm.run_id)
    assert episode.episode_num == 1 and episode.seed == 7 and episode.observation == [0.0, 0.0]
    assert Run.objects.get(pk=rm.run_id).started_at == episode.started_at


def test_each_step_is_committed_with_what_the_env_answered():
    rm = manager()
    reset(rm)
    truncated, progress = step(rm, reward=0.5, info={"lives": 3}, action=[1, 0])
    assert truncated is False
    assert progress == {"run_id": rm.run_id, "episode_num": 1, "step_num": 1, "completed_episodes": 0,
                        "total_episodes": 3, "run_state": "running"}
    row = Step.objects.get(episode__run_id=rm.run_id)
    assert (row.step_num, row.action, row.reward) == (1, [1, 0], 0.5)
    assert (row.info, row.observation) == ({"lives": 3}, [0.1, 0.2])
    assert rm.status().model_dump()["current_step"] == 1


def test_the_step_that_reaches_the_limit_is_truncated_and_ends_the_episode():
    rm = manager(max_steps=3)
    reset(rm)
    assert [step(rm)[0] for _ in range(3)] == [False, False, True]
    episode = Episode.objects.get(run_id=rm.run_id)
    assert episode.total_steps == 3 and episode.total_reward == 3.0 and episode.final_reward == 1.0
    assert episode.truncated and episode.done and not episode.terminated and not episode.abandoned
    assert episode.ended_at is not None
    with pytest.raises(ResetRequired):
        rm.before_step()


def test_a_terminated_episode_ends_and_counts_toward_the_run():
    rm = manager()
    reset(rm)
    step(rm)
    truncated, progress = step(rm, terminated=True)
    assert truncated is False and progress["completed_episodes"] == 1
    run = Run.objects.get(pk=rm.run_id)
    assert (run.completed_episodes, run.total_steps, run.total_reward) == (1, 2, 2.0)
    assert rm.status().model_dump()["progress"] == {"episodes": "1/3", "percentage": 33.33}


def test_the_run_completes_after_its_episodes_and_refuses_resets_until_run_reset():
    rm = manager(num_episodes=2, max_steps=2)
    for _ in range(2):
        reset(rm)
        step(rm)
        _, progress = step(rm)
    assert progress["run_state"] == "completed" and progress["completed_episodes"] == 2
    run = Run.objects.get(pk=rm.run_id)
    assert run.state == "completed" and run.ended_at is not None and run.total_steps == 4
    with pytest.raises(RunCompleted):
        rm.before_reset()
    with pytest.raises(RunCompleted):
        rm.before_step()
    old = rm.run_id
    answer = rm.reset().model_dump()
    assert answer == {"success": True, "message": "Run reset successfully", "run_id": rm.run_id}
    assert rm.run_id != old and Run.objects.get(pk=old).state == "completed"
    assert reset(rm)["episode_num"] == 1


def test_a_reset_mid_episode_abandons_it_and_counts_it():
    rm = manager(num_episodes=3)
    reset(rm)
    step(rm, reward=2.0)
    assert reset(rm)["episode_num"] == 2
    first = Episode.objects.get(run_id=rm.run_id, episode_num=1)
    assert first.abandoned and not first.done and not first.success
    assert (first.total_steps, first.total_reward) == (1, 2.0)
    assert rm.status().model_dump()["completed_episodes"] == 1


def test_abandoning_the_last_episode_completes_the_run_before_the_env_is_reset():
    rm = manager(num_episodes=2)
    reset(rm)
    step(rm, terminated=True)
    reset(rm)
    step(rm)
    with pytest.raises(RunCompleted):
        rm.before_reset()
    run = Run.objects.get(pk=rm.run_id)
    assert run.state == "completed" and run.completed_episodes == 2
    assert Episode.objects.get(run=run, episode_num=2).abandoned
    assert Episode.objects.filter(run=run).count() == 2


def test_pause_refuses_resets_and_steps_until_resume():
    rm = manager()
    reset(rm)
    assert rm.pause().model_dump()["state"] == "paused"
    assert Run.objects.get(pk=rm.run_id).state == "paused"
    with pytest.raises(RunPaused):
        rm.before_step()
    with pytest.raises(RunPaused):
        rm.before_reset()
    assert rm.pause().model_dump()["state"] == "paused"  # pausing twice is harmless
    assert rm.resume().model_dump()["state"] == "running"
    step(rm)
    assert Step.objects.filter(episode__run_id=rm.run_id).count() == 1


def test_an_env_error_stops_the_run_keeping_its_open_episode():
    rm = manager()
    reset(rm)
    step(rm)
    step(rm)
    rm.on_error("CartPole-v1 raised RuntimeError: boom")
    run = Run.objects.get(pk=rm.run_id)
    assert run.state == "error" and run.error == "CartPole-v1 raised RuntimeError: boom"
    episode = run.episodes.get()
    assert episode.total_steps == 2 and episode.abandoned and episode.ended_at is not None
    with pytest.raises(RunEnded) as exc:
        rm.before_reset()
    assert exc.value.code == "run_error" and "boom" in exc.value.message
    rm.reset().model_dump()
    assert rm.status().model_dump()["state"] == "running"
    reset(rm)


def test_run_reset_stops_an_unfinished_run_with_a_reason_and_opens_a_new_one():
    rm = manager()
    reset(rm)
    step(rm)
    old = rm.run_id
    rm.reset().model_dump()
    old_run = Run.objects.get(pk=old)
    assert (old_run.state, old_run.reason, old_run.error) == ("stopped", "reset by client before it completed", "")
    assert old_run.episodes.get().total_steps == 1
    assert rm.status().model_dump()["current_episode"] == 0
    with pytest.raises(ResetRequired):  # the env is mid-episode, the new run has none yet
        rm.before_step()


def test_start_resumes_a_paused_run_and_replaces_a_finished_one():
    rm = manager(num_episodes=1)
    first = rm.run_id
    assert rm.start().model_dump()["run_id"] == first  # running: nothing to do
    rm.pause().model_dump()
    assert rm.start().model_dump() == {**rm.status().model_dump(), "state": "running"} and rm.run_id == first
    reset(rm)
    step(rm, terminated=True)
    assert rm.status().model_dump()["state"] == "completed"
    status = rm.start().model_dump()
    assert status["state"] == "running" and status["run_id"] != first


def test_pause_and_resume_of_a_completed_run_say_so():
    rm = manager(num_episodes=1)
    reset(rm)
    step(rm, terminated=True)
    with pytest.raises(RunCompleted):
        rm.pause().model_dump()
    with pytest.raises(RunCompleted):
        rm.resume().model_dump()


def test_close_stops_an_unfinished_run_keeping_its_partial_episode():
    rm = manager()
    reset(rm)
    step(rm, reward=0.25)
    rm.close("server shut down")
    run = Run.objects.get(pk=rm.run_id)
    assert (run.state, run.reason, run.error) == ("stopped", "server shut down", "")
    assert (run.total_steps, run.total_reward) == (1, 0.25)
    assert run.episodes.get().total_steps == 1


def test_close_leaves_a_completed_run_as_it_is():
    rm = manager(num_episodes=1)
    reset(rm)
    step(rm, terminated=True)
    rm.close("interrupted")
    run = Run.objects.get(pk=rm.run_id)
    assert run.state == "completed" and run.error == ""


def test_a_non_finite_reward_is_recorded_as_null_and_adds_nothing():
    rm = manager()
    reset(rm)
    step(rm, reward=float("nan"))
    step(rm, reward=1.0, terminated=True)
    assert list(Step.objects.order_by("step_num").values_list("reward", flat=True)) == [None, 1.0]
    assert Episode.objects.get(run_id=rm.run_id).total_reward == 1.0


def test_seeds_beyond_64_bits_are_kept_exactly():
    rm = manager()
    reset(rm, seed=2**100 + 1)
    assert Episode.objects.get(run_id=rm.run_id).seed == 2**100 + 1


def test_non_finite_numbers_in_info_and_observations_become_null():
    rm = manager()
    reset(rm)
    rm.on_step(action=0, observation=[float("inf"), 1.0], reward=1.0, terminated=False, truncated=False,
               info={"x": float("nan"), "ok": 1})
    row = Step.objects.get()
    assert row.observation == [None, 1.0] and row.info == {"x": None, "ok": 1}


def test_a_step_the_ledger_cannot_record_stops_the_run():
    rm = manager()
    reset(rm)
    step(rm)
    Run.objects.filter(pk=rm.run_id).delete()  # e.g. deleted in the admin while live
    with pytest.raises(LedgerFailed) as exc:
        step(rm)
    assert exc.value.code == "ledger_error"
    assert rm.status().model_dump()["state"] == "error"
    with pytest.raises(RunEnded) as refused:
        rm.before_reset()
    assert refused.value.code == "run_error" and "step 2 could not be recorded" in refused.value.message
    rm.reset().model_dump()
    reset(rm)
    step(rm)
    assert Step.objects.filter(episode__run_id=rm.run_id).count() == 1


def test_a_closed_manager_cannot_be_revived_by_a_racing_run_reset():
    rm = manager()
    reset(rm)
    closed_run = rm.run_id
    rm.close("instance deleted")  # the delete wins the lock; the racing /run/reset comes second
    for control in (rm.reset, rm.start, rm.pause, rm.resume):
        with pytest.raises(InstanceClosed):
            control()
    assert rm.run_id == closed_run and live_manager(closed_run) is None
    assert Run.objects.filter(instance_id="default").count() == 1
    assert Run.objects.get(pk=closed_run).state == "stopped"
