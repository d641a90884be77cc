"""Ledger reads: /run/statistics, run history, an episode's steps and the JSON Lines export."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from gymsite.errors import UnknownRun
from runs import selectors, services
from runs.models import Run
from runs.schemas import RunListOut, RunStatisticsOut, StepListOut


def a_run(*, episodes=2, steps=4, open_steps=None, state="running", env_id="CartPole-v1", reward=0.5,
          created_at=None) -> Run:
    """A run written through the services: `episodes` episodes, all ended after `steps` steps of
    reward 1.0 except the last when `open_steps` is given (left open after that many 0.5 steps)."""
    run = services.run_create(instance_id="default", env_id=env_id, env_kwargs={"a": 1}, env_spec={"id": env_id},
                              num_episodes=10, max_steps_per_episode=100, success_threshold=3.0)
    start = (created_at or timezone.now()) - timedelta(minutes=5)
    if created_at is not None:
        Run.objects.filter(pk=run.pk).update(created_at=created_at)
    completed = total = 0
    for num in range(1, episodes + 1):
        t = start + timedelta(seconds=num)
        ep = services.episode_open(run_id=run.pk, episode_num=num, seed=num, observation=[0, 0], info={"r": num},
                                   started_at=t, first=num == 1)
        is_open = open_steps is not None and num == episodes
        n = open_steps if is_open else steps
        r = reward if is_open else 1.0
        for s in range(1, n + 1):
            services.step_record(row=services.step_build(
                episode_id=ep, step_num=s, action=s % 2, observation=[s, s], reward=r,
                terminated=not is_open and s == n, truncated=False, info={"s": s},
                created_at=t + timedelta(milliseconds=s)))
        if not is_open:
            services.episode_close(episode_id=ep, ended_at=t + timedelta(milliseconds=n), total_steps=n,
                                   total_reward=float(n), final_reward=1.0, terminated=True, truncated=False,
                                   done=True, success=n >= 3, abandoned=False)
            completed += 1
            total += n
    services.run_set_totals(run_id=run.pk, completed_episodes=completed,
                            successful_episodes=completed if steps >= 3 else 0, total_steps=total,
                            total_reward=float(total), state=state)
    run.refresh_from_db()
    return run


@pytest.mark.django_db
def test_statistics_have_the_documented_shape_and_totals():
    run = a_run(episodes=3, steps=4)
    stats = selectors.run_statistics(run_id=run.pk).model_dump()
    RunStatisticsOut.model_validate(stats)
    assert stats["run_id"] == str(run.pk) and stats["env_id"] == "CartPole-v1" and stats["state"] == "running"
    assert (stats["completed_episodes"], stats["total_steps"], stats["total_reward"]) == (3, 12, 12.0)
    assert stats["abandoned_episodes"] == 0 and stats["reason"] is None and stats["parent"] is None
    assert (stats["average_reward"], stats["average_steps"]) == (4.0, 4.0)
    assert (stats["successful_episodes"], stats["success_rate"]) == (3, 1.0)
    assert (stats["current_episode"], stats["current_step"]) == (3, 4)
    assert stats["start_time"].endswith("+00:00") and stats["end_time"] is None and stats["duration"] > 0
    assert [e["episode_num"] for e in stats["episodes"]] == [1, 2, 3]
    assert stats["episodes"][0] == {
        "episode_num": 1, "env_index": None, "seed": 1, "total_steps": 4, "total_reward": 4.0, "final_reward": 1.0,
        "done": True,
        "terminated": True, "truncated": False, "abandoned": False, "success": True, "duration": 0.004,
    }


@pytest.mark.django_db
def test_an_open_episode_of_a_dead_process_is_summed_from_its_steps():
    run = a_run(episodes=2, steps=4, open_steps=3)
    stats = selectors.run_statistics(run_id=run.pk).model_dump()
    assert stats["episodes"][1]["total_steps"] == 3 and stats["episodes"][1]["total_reward"] == 1.5
    assert stats["episodes"][1]["done"] is False
    assert (stats["completed_episodes"], stats["total_steps"], stats["total_reward"]) == (1, 7, 5.5)
    assert stats["average_reward"] == 4.0  # over ended episodes only
    assert stats["current_step"] == 3


@pytest.mark.django_db
def test_an_open_episode_takes_the_live_managers_totals():
    run = a_run(episodes=1, open_steps=1)
    live = selectors.LiveEpisode(episode_num=1, total_steps=9, total_reward=2.5, final_reward=0.25)
    ep = selectors.run_statistics(run_id=run.pk, live=live).model_dump()["episodes"][0]
    assert (ep["total_steps"], ep["total_reward"], ep["final_reward"]) == (9, 2.5, 0.25)


@pytest.mark.django_db
def test_a_run_with_no_episodes_has_zero_averages():
    run = a_run(episodes=0)
    stats = selectors.run_statistics(run_id=run.pk).model_dump()
    assert (stats["average_reward"], stats["success_rate"], stats["current_episode"]) == (0.0, 0.0, 0)
    assert stats["start_time"] is None and stats["duration"] is None and stats["episodes"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("run_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", ""])
def test_an_unknown_or_malformed_run_id_is_not_found(run_id):
    with pytest.raises(UnknownRun):
        selectors.run_statistics(run_id=run_id).model_dump()


@pytest.mark.django_db
def test_run_history_is_newest_first_paginated_and_filtered():
    base = timezone.now()
    runs = [a_run(episodes=0, env_id="CartPole-v1" if i % 2 else "Taxi-v4", created_at=base + timedelta(seconds=i),
                  state="completed" if i < 2 else "running") for i in range(5)]
    page = selectors.run_list(page=1, page_size=2).model_dump()
    RunListOut.model_validate(page)
    assert [r["run_id"] for r in page["runs"]] == [str(runs[4].pk), str(runs[3].pk)]
    assert (page["count"], page["num_pages"]) == (5, 3)
    assert [r["run_id"] for r in selectors.run_list(page=3, page_size=2).model_dump()["runs"]] == [str(runs[0].pk)]
    assert selectors.run_list(page=9, page_size=2).model_dump()["runs"] == []
    cartpole = selectors.run_list(env_id="CartPole-v1").model_dump()
    assert cartpole["count"] == 2 and {r["env_id"] for r in cartpole["runs"]} == {"CartPole-v1"}
    completed = selectors.run_list(state="completed").model_dump()
    assert [r["run_id"] for r in completed["runs"]] == [str(runs[1].pk), str(runs[0].pk)]


@pytest.mark.django_db
def test_an_episodes_steps_come_in_order_page_by_page():
    run = a_run(episodes=1, steps=7)
    page = selectors.step_list(run_id=str(run.pk), episode_num=1, page=2, page_size=3).model_dump()
    StepListOut.model_validate(page)
    assert [s["step_num"] for s in page["steps"]] == [4, 5, 6]
    assert (page["count"], page["num_pages"]) == (7, 3)
    assert page["steps"][0] == {**page["steps"][0], "action": 0, "reward": 1.0, "observation": [4, 4],
                                "info": {"s": 4}, "terminated": False}
    with pytest.raises(UnknownRun):
        selectors.step_list(run_id=str(run.pk), episode_num=2)


@pytest.mark.django_db
def test_the_export_is_a_run_line_then_each_episode_followed_by_its_steps():
    run = a_run(episodes=3, steps=2, open_steps=1)
    lines = [json.loads(line) for line in selectors.run_export_lines(run=run)]
    assert [(obj["type"], obj.get("episode_num"), obj.get("step_num")) for obj in lines] == [
        ("run", None, None),
        ("episode", 1, None), ("step", 1, 1), ("step", 1, 2),
        ("episode", 2, None), ("step", 2, 1), ("step", 2, 2),
        ("episode", 3, None), ("step", 3, 1),
    ]
    assert lines[0]["run_id"] == str(run.pk) and lines[0]["env_kwargs"] == {"a": 1}
    assert lines[1]["seed"] == 1 and lines[1]["observation"] == [0, 0] and lines[1]["info"] == {"r": 1}
    assert lines[-2]["total_steps"] == 1 and lines[-2]["ended_at"] is None  # the open episode, summed


@pytest.mark.django_db
def test_the_export_is_generated_lazily(django_assert_num_queries):
    run = a_run(episodes=1, steps=2)
    with django_assert_num_queries(0):  # the run line comes from the row in hand: no episode or step read yet
        lines = selectors.run_export_lines(run=run)
        assert json.loads(next(lines))["type"] == "run"
    assert [json.loads(line)["type"] for line in lines] == ["episode", "step", "step"]
