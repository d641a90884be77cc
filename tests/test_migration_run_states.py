"""Migration 0003: runs that older code put in `error` though they were stopped on purpose are re-labelled
`stopped` with that reason; runs that never had an episode leave the history; the rest stay as they were."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE, AFTER = [("runs", "0003_vector_steps")], [("runs", "0004_trajectories")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_runs_stopped_on_purpose_are_relabelled_and_empty_ones_dropped():
    old = migrate(BEFORE)
    Run, Episode = old.get_model("runs", "Run"), old.get_model("runs", "Episode")

    def a_run(state, error, episodes=1):
        run = Run.objects.create(instance_id="i", env_id="CartPole-v1", num_episodes=3, max_steps_per_episode=9,
                                 state=state, error=error)
        for n in range(1, episodes + 1):
            Episode.objects.create(run=run, episode_num=n, started_at=timezone.now())
        return run.pk

    deleted = a_run("error", "instance deleted")
    reset = a_run("error", "reset by client before it completed")
    crashed = a_run("error", "interrupted")
    env_raised = a_run("error", "CartPole-v1 raised RuntimeError: boom")
    empty = a_run("error", "instance deleted", episodes=0)
    open_empty = a_run("running", "", episodes=0)
    try:
        new = migrate(AFTER)
        runs = {r.pk: r for r in new.get_model("runs", "Run").objects.all()}
        assert (runs[deleted].state, runs[deleted].reason, runs[deleted].error) == ("stopped", "instance deleted", "")
        assert runs[reset].state == "stopped" and runs[reset].reason == "reset by client before it completed"
        assert (runs[crashed].state, runs[crashed].error) == ("error", "interrupted")
        assert runs[env_raised].state == "error" and runs[env_raised].reason == ""
        assert empty not in runs
        assert open_empty in runs  # a live process may still give it an episode; start-up housekeeping decides
    finally:
        migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
