"""The dashboard over HTTP: the pages, the live feed, the replay, the controls' guards and the token's sign-in.

What a browser does with them (scripts, charts, clicks) is tests/test_dashboard_browser.py's.
"""

import base64
import datetime
import io
import json
import re
import urllib.request

import numpy as np
from PIL import Image

from runs.frames import episode_frames

CARTPOLE = {"env_id": "CartPole-v1", "run_manager": True}
HTML = {"Accept": "text/html,application/xhtml+xml"}


def play_episodes(srv, n, steps=3):
    for _ in range(n):
        srv.post("/reset", {"seed": 0})
        for _ in range(steps):
            srv.post("/step", {"action": 0})


def page(srv, path, **kw):
    return srv.client.get(srv.base + path, headers={**HTML, **kw.pop("headers", {})}, **kw)


def test_the_home_page_links_the_live_run_and_shows_its_progress_without_a_meta_refresh(serve):
    srv = serve(**CARTPOLE, num_episodes=4, max_steps_per_episode=3)
    play_episodes(srv, 2)
    html = page(srv, "/").text
    run_id = srv.get("/run/status").body["run_id"]
    assert f'href="/dashboard/runs/{run_id}/"' in html and "2/4" in html
    assert 'http-equiv="refresh"' not in html and "live.js" in html


def test_without_the_run_manager_the_home_page_reads_no_ledger(spawn):
    server = spawn(["--env", "CartPole-v1", "--no-run-manager"])  # a fresh database, never migrated
    with urllib.request.urlopen(urllib.request.Request(server.base + "/", headers=HTML), timeout=30) as answer:
        assert "The run manager is off" in answer.read().decode()
    with urllib.request.urlopen(server.base + "/dashboard/feed.json", timeout=30) as answer:
        feed = json.load(answer)
    assert feed["instances"][0]["run"] is None and feed["recent_runs"] == []


def test_the_feed_gives_the_watched_instances_episodes_and_frame(serve):
    srv = serve(**CARTPOLE, max_steps_per_episode=3)
    play_episodes(srv, 2)
    srv.post("/reset", {"seed": 1})
    feed = srv.get("/dashboard/feed.json").body
    focus = feed["focus"]
    assert focus["instance_id"] == "default" and focus["threshold"] == 475.0
    assert focus["series"] == {"episode": [1, 2], "reward": [3.0, 3.0], "length": [3, 3], "success": [False, False]}
    png = base64.b64decode(focus["frame"].removeprefix("data:image/png;base64,"))
    assert Image.open(io.BytesIO(png)).size == (600, 400)
    [row] = feed["instances"]
    assert row["run"]["completed_episodes"] == 2 and row["run"]["average_reward"] == 3.0
    assert [r["run_id"] for r in feed["recent_runs"]] == [row["run"]["run_id"]]


def test_the_feed_groups_idle_and_finished_instances_apart_from_active_ones(serve):
    srv = serve(**CARTPOLE, max_steps_per_episode=2)
    finished = srv.post("/envs", {"num_episodes": 1}).body["instance_id"]
    srv.post(f"/envs/{finished}/reset", {"seed": 0})
    srv.post(f"/envs/{finished}/step", {"action": 0})
    srv.post(f"/envs/{finished}/step", {"action": 0})
    idle = srv.post("/envs", {}).body["instance_id"]
    srv.engine.get(idle).last_used_at -= 3600
    groups = {row["instance_id"]: row["group"] for row in srv.get("/dashboard/feed.json").body["instances"]}
    assert groups == {"default": "active", finished: "finished", idle: "idle"}
    html = page(srv, "/").text
    assert html.index('data-group="active"') < html.index(f'data-instance="{idle}"') < html.index(
        f'data-instance="{finished}"')


def test_the_feed_of_an_unknown_focus_watches_the_default_instance(serve):
    srv = serve(**CARTPOLE)
    assert srv.get("/dashboard/feed.json?focus=nope").body["focus"]["instance_id"] == "default"


def test_the_frame_endpoint_serves_the_current_frame_as_png(serve):
    srv = serve(env_id="CartPole-v1")
    assert srv.get("/dashboard/frame/default.png").body["code"] == "reset_required"
    srv.post("/reset", {"seed": 0})
    r = srv.client.get(srv.base + "/dashboard/frame/default.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG")
    assert srv.get("/dashboard/frame/nope.png").status == 404


def test_a_run_page_lists_its_episodes_and_an_unknown_run_has_an_html_404(serve):
    srv = serve(**CARTPOLE, max_steps_per_episode=3)
    play_episodes(srv, 2)
    run_id = srv.get("/run/status").body["run_id"]
    html = page(srv, f"/dashboard/runs/{run_id}/").text
    assert html.count(f'href="/dashboard/runs/{run_id}/episodes/') == 4  # two links per episode
    assert 'id="chart-data"' in html
    missing = page(srv, "/dashboard/runs/00000000-0000-0000-0000-000000000000/")
    assert missing.status_code == 404 and "text/html" in missing.headers["content-type"]


def test_an_episode_page_shows_each_step_with_its_action_and_reward(serve):
    srv = serve(**CARTPOLE, max_steps_per_episode=3)
    play_episodes(srv, 1)
    run_id = srv.get("/run/status").body["run_id"]
    html = page(srv, f"/dashboard/runs/{run_id}/episodes/1/").text
    assert len(re.findall(r'<tr class="clickable" data-step="\d+">', html)) == 3
    assert "replay.json" in html and "replay.gif" in html


def test_a_replay_renders_the_frames_the_live_env_rendered(serve):
    srv = serve(**CARTPOLE, max_steps_per_episode=4)
    srv.post("/reset", {"seed": 7})
    live = [srv.post("/render").body["render"]]
    for action in (1, 0, 1, 1):
        srv.post("/step", {"action": action})
        if len(live) < 4:
            live.append(srv.post("/render").body["render"])
    run_id = srv.get("/run/status").body["run_id"]
    replay = srv.get(f"/dashboard/runs/{run_id}/episodes/1/replay.json").body
    assert len(replay["frames"]) == 5 and replay["shape"] == [400, 600, 3]
    assert replay["frames"][:4] == live  # the same PNGs, bit for bit
    gif = srv.client.get(srv.base + f"/dashboard/runs/{run_id}/episodes/1/replay.gif")
    assert gif.headers["content-type"] == "image/gif"
    animation = Image.open(io.BytesIO(gif.content))
    shown = 0  # Pillow merges frames that look alike after quantizing, adding up their durations
    for i in range(animation.n_frames):
        animation.seek(i)
        shown += animation.info["duration"]
    assert shown == 5 * 40


def test_episode_frames_stop_where_the_episode_ended():
    frames = episode_frames(env_id="CartPole-v1", env_kwargs={}, seed=0, actions=[0] * 50)
    assert 5 < len(frames) < 51 and all(isinstance(f, np.ndarray) for f in frames)


def test_a_replay_of_an_unknown_episode_is_a_json_404(serve):
    srv = serve(**CARTPOLE)
    play_episodes(srv, 1)
    run_id = srv.get("/run/status").body["run_id"]
    assert srv.get(f"/dashboard/runs/{run_id}/episodes/9/replay.json").status == 404


def test_history_filters_runs_by_state_and_day(serve):
    srv = serve(**CARTPOLE, max_steps_per_episode=3)
    play_episodes(srv, 1)
    srv.post("/run/reset")
    srv.post("/reset")  # history keeps no run without an episode (SPEC 7)
    today = datetime.date.today().isoformat()
    assert page(srv, "/dashboard/runs/").text.count('name="run"') == 2
    assert page(srv, "/dashboard/runs/?state=running").text.count('name="run"') == 1
    assert page(srv, f"/dashboard/runs/?since={today}&until={today}").text.count('name="run"') == 2
    assert page(srv, "/dashboard/runs/?until=2001-01-01").text.count('name="run"') == 0
    assert page(srv, "/dashboard/runs/?since=not-a-day&page=x").status_code == 200  # ignored, not a 500


def test_two_runs_compare_on_one_chart(serve):
    srv = serve(**CARTPOLE, max_steps_per_episode=3)
    play_episodes(srv, 1)
    first = srv.get("/run/status").body["run_id"]
    second = srv.post("/run/reset").body["run_id"]
    play_episodes(srv, 1)
    html = page(srv, f"/dashboard/compare/?run={first}&run={second}").text
    assert first[:8] in html and second[:8] in html and html.count('class="cards"') == 2


def test_a_control_without_the_csrf_token_is_refused_and_changes_nothing(serve):
    srv = serve(**CARTPOLE)
    answer = srv.client.post(srv.base + "/dashboard/instances/default/run/pause")
    assert answer.status_code == 403
    assert srv.get("/run/status").body["state"] == "running"


def test_a_browser_without_the_token_gets_the_sign_in_page_and_an_api_client_json(serve):
    srv = serve(**CARTPOLE, token="s3cret")
    assert srv.get("/").status == 401 and srv.get("/").body["code"] == "unauthorized"
    signin = page(srv, "/dashboard/runs/")
    assert signin.status_code == 401 and '<input id="token" name="token"' in signin.text
    assert 'value="/dashboard/runs/"' in signin.text  # signed in, the browser comes back here


def test_the_token_in_the_address_bar_becomes_a_cookie_and_the_url_loses_it(serve):
    srv = serve(**CARTPOLE, token="s3cret")
    r = page(srv, "/dashboard/runs/?state=running&token=s3cret")
    assert r.status_code == 302 and r.headers["location"] == "/dashboard/runs/?state=running"
    assert "gymsite_token=s3cret" in r.headers["set-cookie"] and "HttpOnly" in r.headers["set-cookie"]
    assert srv.client.get(srv.base + "/dashboard/frame/default.png").status_code != 401  # the client keeps it


def test_the_sign_in_form_sets_the_cookie_only_for_the_right_token(serve):
    srv = serve(**CARTPOLE, token="s3cret")
    wrong = srv.client.post(srv.base + "/dashboard/sign-in", data={"token": "nope", "next": "/"})
    assert wrong.status_code == 401 and "not the token" in wrong.text and "set-cookie" not in wrong.headers
    right = srv.client.post(srv.base + "/dashboard/sign-in", data={"token": "s3cret", "next": "//evil.example/"})
    assert right.status_code == 302 and right.headers["location"] == "/"
    assert page(srv, "/").status_code == 200


def test_the_admin_says_gymsite(serve):
    srv = serve(**CARTPOLE)
    html = page(srv, "/admin/login/").text
    assert "<title>Log in | gymsite</title>" in html and "Django administration" not in html


def test_a_script_with_the_token_in_the_query_is_answered_where_it_asked(serve):
    srv = serve(**CARTPOLE, token="s3cret")
    r = srv.client.get(srv.base + "/info?token=s3cret", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["env_info"]["id"] == "CartPole-v1"
