"""The ledger in the admin: read-only history, computed columns, a constant number of queries per page."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from runs.models import Episode, Run, Step
from tests.test_run_statistics import a_run

pytestmark = pytest.mark.django_db


def queries_for(client, url) -> int:
    client.get(url)  # warm the per-process caches (content types) first
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return len(ctx.captured_queries)


def test_the_run_list_shows_progress_average_reward_and_success_rate(admin_client):
    a_run(episodes=2, steps=4)  # 2 ended episodes of reward 4: average 4, both successes
    response = admin_client.get(reverse("admin:runs_run_changelist"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "2/10" in html and "4.0" in html and "100%" in html


def test_the_run_list_costs_the_same_queries_for_many_runs(admin_client, django_assert_max_num_queries):
    url = reverse("admin:runs_run_changelist")
    for _ in range(2):
        a_run(episodes=1, steps=1)
    few = queries_for(admin_client, url)
    for _ in range(40):
        a_run(episodes=1, steps=1)
    assert queries_for(admin_client, url) == few
    with django_assert_max_num_queries(8):  # session, user, count, date hierarchy, the page, filters
        admin_client.get(url)


def test_the_run_list_filters_by_state_and_env_and_searches_ids(admin_client):
    cart = a_run(episodes=0, env_id="CartPole-v1", state="completed")
    taxi = a_run(episodes=0, env_id="Taxi-v4")
    url = reverse("admin:runs_run_changelist")
    html = admin_client.get(url, {"state__exact": "completed"}).content.decode()
    assert str(cart.pk) in html and str(taxi.pk) not in html
    html = admin_client.get(url, {"env_id__exact": "Taxi-v4"}).content.decode()
    assert str(taxi.pk) in html and str(cart.pk) not in html
    html = admin_client.get(url, {"q": str(taxi.pk)}).content.decode()
    assert str(taxi.pk) in html and str(cart.pk) not in html
    html = admin_client.get(url, {"q": str(cart.pk)[:8]}).content.decode()
    assert str(cart.pk) in html


def test_a_runs_page_lists_its_episodes_with_constant_queries(admin_client):
    small, large = a_run(episodes=2, steps=1), a_run(episodes=60, steps=1)
    few = queries_for(admin_client, reverse("admin:runs_run_change", args=[small.pk]))
    assert queries_for(admin_client, reverse("admin:runs_run_change", args=[large.pk])) == few
    html = admin_client.get(reverse("admin:runs_run_change", args=[large.pk])).content.decode()
    assert "episode 60" in html and "all episodes, paginated" in html


def test_history_cannot_be_added_or_edited_only_deleted(admin_client):
    run = a_run(episodes=1, steps=2)
    assert admin_client.get(reverse("admin:runs_run_add")).status_code == 403
    change = admin_client.get(reverse("admin:runs_run_change", args=[run.pk]))
    assert change.status_code == 200 and b'name="env_id"' not in change.content  # shown, not editable
    admin_client.post(reverse("admin:runs_run_change", args=[run.pk]), {"env_id": "Hacked-v0"})
    assert Run.objects.get(pk=run.pk).env_id == "CartPole-v1"
    response = admin_client.post(reverse("admin:runs_run_delete", args=[run.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not Run.objects.exists() and not Episode.objects.exists() and not Step.objects.exists()


def test_steps_are_listed_by_episode_page_by_page_with_constant_queries(admin_client):
    run = a_run(episodes=1, steps=5)
    episode = Episode.objects.get(run=run)
    url = reverse("admin:runs_step_changelist")
    few = queries_for(admin_client, f"{url}?episode={episode.pk}")
    long_run = a_run(episodes=1, steps=150)
    long_ep = Episode.objects.get(run=long_run)
    assert queries_for(admin_client, f"{url}?episode={long_ep.pk}") == few
    html = admin_client.get(f"{url}?episode={long_ep.pk}&p=2").content.decode()
    assert "episode 1" in html
    step = Step.objects.get(episode=episode, step_num=3)
    page = admin_client.get(reverse("admin:runs_step_change", args=[step.pk])).content.decode()
    assert "[3, 3]" in page  # the observation, decoded


def test_an_episodes_page_links_to_its_paginated_steps(admin_client):
    run = a_run(episodes=1, steps=3)
    episode = Episode.objects.get(run=run)
    html = admin_client.get(reverse("admin:runs_episode_change", args=[episode.pk])).content.decode()
    assert f"?episode={episode.pk}" in html and "all 3 steps" in html


@pytest.mark.parametrize("model", ["run", "episode", "step"])
@pytest.mark.parametrize("object_id", ["abc", "1.5", "not-a-uuid"])
def test_a_change_or_delete_url_with_a_malformed_id_is_404(admin_client, model, object_id):
    a_run(episodes=1, steps=1)
    for view in ("change", "delete"):
        assert admin_client.get(reverse(f"admin:runs_{model}_{view}", args=[object_id])).status_code == 404


def test_the_admin_shows_stopped_runs_with_their_reason_forks_with_their_parent_and_seeds(admin_client):
    source = a_run(episodes=1, steps=3)
    Run.objects.filter(pk=source.pk).update(state="stopped", reason="instance deleted")
    fork = a_run(episodes=1, steps=1)
    Run.objects.filter(pk=fork.pk).update(parent_run=source, parent_episode_num=1, parent_step_num=2)
    url = reverse("admin:runs_run_changelist")
    html = admin_client.get(url, {"state__exact": "stopped"}).content.decode()
    assert str(source.pk) in html and "instance deleted" in html and str(fork.pk) not in html
    html = admin_client.get(url).content.decode()
    assert f"{str(source.pk)[:8]}</a> episode 1 step 2" in html
    page = admin_client.get(reverse("admin:runs_run_change", args=[fork.pk])).content.decode()
    assert "episode 1 step 2" in page and "Seed" in page
def test_the_run_list_shows_short_ids_times_to_the_second_and_durations(admin_client):
    run = a_run(episodes=2, steps=1)
    html = admin_client.get(reverse("admin:runs_run_changelist")).content.decode()
    assert f'<code title="{run.pk}">{str(run.pk)[:8]}</code>' in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", html) and " s</td>" in html
    assert f'href="/dashboard/runs/{run.pk}/"' in html


def test_a_runs_steps_list_holds_only_that_runs_steps_in_time_order(admin_client):
    run, other = a_run(episodes=2, steps=3), a_run(episodes=1, steps=4)
    url = reverse("admin:runs_step_changelist") + f"?episode__run={run.pk}"
    html = admin_client.get(url).content.decode()
    assert html.count(f'<code title="{run.pk}">') == 6 and str(other.pk) not in html
    rows = re.findall(r'field-step_num[^>]*>(?:<a[^>]*>)?(\d+)<', html)
    assert rows == ["1", "2", "3", "1", "2", "3"], rows
    run_page = admin_client.get(reverse("admin:runs_run_change", args=[run.pk])).content.decode()
    assert f"?episode__run={run.pk}" in run_page
