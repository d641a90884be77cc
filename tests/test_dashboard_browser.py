"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright (SPEC 15).

Each test leaves a screenshot in tests/screenshots/ (kept out of git) to look at. The tests wait on
what the page shows (Playwright's expect polls, bounded), never on sleeps.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

playwright_sync = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]' brings Playwright")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason="needs Debian's Chromium: apt-get install -y chromium")
expect = playwright_sync.expect

SHOTS = Path(__file__).parent / "screenshots"
CARTPOLE = {"env_id": "CartPole-v1", "run_manager": True}
WAIT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API keeps an asyncio loop running on this thread, and Django then refuses ORM
    # calls here (the test database's set-up, the engine's ledger) as if they came from async code.
    # None of them runs on that loop, so Django's documented escape hatch is safe for these tests.
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _chromium()
    finally:
        if saved is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


def _chromium():
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def play(srv, *, episodes: int, actions=(0,), seed: int = 0) -> None:
    """Plays whole episodes (cycling through `actions` until each one ends)."""
    for _ in range(episodes):
        assert srv.post("/reset", {"seed": seed}).status == 200
        done, i = False, 0
        while not done:
            answer = srv.post("/step", {"action": actions[i % len(actions)]})
            assert answer.status == 200, answer.body
            done, i = answer.body["done"], i + 1


def test_the_home_page_updates_in_place_as_episodes_end(serve, page):
    srv = serve(**CARTPOLE, num_episodes=5)
    page.goto(srv.base + "/")
    page.evaluate("window.notReloaded = true")
    row = page.locator('tr[data-instance="default"]')
    expect(row).to_contain_text("0/5")
    play(srv, episodes=2)
    expect(row).to_contain_text("2/5")
    expect(page.locator("#reward-chart circle")).to_have_count(2)
    assert page.evaluate("window.notReloaded") is True, "the page reloaded itself"
    srv.post("/reset", {"seed": 1})
    expect(page.locator("#focus-frame")).to_be_visible()  # the frame of the episode in progress
    shot(page, "home-live")


def test_the_charts_have_axes_points_a_threshold_and_a_rolling_mean(serve, page):
    srv = serve(**CARTPOLE)
    play(srv, episodes=4, actions=(0, 1, 1))
    page.goto(srv.base + "/")
    chart = page.locator("#reward-chart")
    expect(chart.locator("circle")).to_have_count(4)
    box = chart.bounding_box()
    assert box["width"] >= 400 and box["height"] >= 140, box
    assert chart.locator("line.threshold").count() == 1  # CartPole's reward_threshold, 475
    expect(chart.locator("text.threshold-label")).to_contain_text("475")
    assert chart.locator("polyline.rolling").count() == 1
    ticks = [t for t in chart.locator("text").all_text_contents() if re.fullmatch(r"-?[\d.e+]+", t)]
    assert len(ticks) >= 6, ticks  # y ticks and episode numbers
    assert page.locator("#length-chart circle").count() == 4
    shot(page, "charts")


def test_a_chart_with_one_episode_or_equal_values_still_has_a_scale(serve, page):
    srv = serve(**CARTPOLE)
    play(srv, episodes=1)
    page.goto(srv.base + "/")
    expect(page.locator("#length-chart circle")).to_have_count(1)
    play(srv, episodes=2)  # the same seed and actions: three equal returns
    expect(page.locator("#length-chart circle")).to_have_count(3)
    ys = {page.locator("#length-chart circle").nth(i).get_attribute("cy") for i in range(3)}
    assert len(ys) == 1
    labels = page.locator("#length-chart text").all_text_contents()
    assert len([t for t in labels if re.fullmatch(r"-?[\d.]+", t)]) >= 5, labels
    shot(page, "charts-equal-values")


def test_a_recorded_episode_replays_frame_by_frame(serve, page):
    srv = serve(**CARTPOLE)
    play(srv, episodes=1)
    run_id = srv.get("/run/status").body["run_id"]
    steps = srv.get(f"/runs/{run_id}").body["episodes"][0]["total_steps"]
    page.goto(srv.base + "/")
    page.locator(f'a[href="/dashboard/runs/{run_id}/"]').first.click()
    expect(page.locator("h1")).to_contain_text(run_id)
    expect(page.locator("#reward-chart circle")).to_have_count(1)
    shot(page, "run-page")
    page.locator("#episodes a").first.click()
    player = page.locator("#player")
    expect(player).to_have_attribute("data-frames", str(steps + 1))
    expect(page.locator("#replay-position")).to_have_text(f"0 / {steps}")
    page.locator("#replay-play").click()
    expect(page.locator("#replay-position")).to_have_text(f"{steps} / {steps}")
    expect(page.locator("#replay-play")).to_have_text("Play")  # stopped at the end
    page.locator("#replay-scrubber").fill("3")
    expect(page.locator("#replay-position")).to_have_text(f"3 / {steps}")
    expect(page.locator("#inspect-num")).to_have_text("3")  # the step inspector follows the scrubber
    expect(page.locator("#inspect-detail")).to_contain_text('"reward"')
    gif = page.request.get(srv.base + f"/dashboard/runs/{run_id}/episodes/1/replay.gif")
    assert gif.ok and gif.headers["content-type"] == "image/gif" and gif.body()[:6] == b"GIF89a"
    shot(page, "episode-replay")


def test_the_controls_pause_resume_and_reset_the_run_and_open_and_delete_instances(serve, page):
    srv = serve(**CARTPOLE)
    page.goto(srv.base + "/")
    row = page.locator('tr[data-instance="default"]')
    first_run = srv.get("/run/status").body["run_id"]
    row.locator('button[data-action="pause"]').click()
    expect(row).to_contain_text("paused")
    assert srv.post("/reset", {}).body["code"] == "run_paused"
    row.locator('button[data-action="resume"]').click()
    expect(row).to_contain_text("running")
    row.locator('button[data-action="reset"]').click()
    expect(row.locator("a")).not_to_have_text(first_run[:8])
    assert srv.get("/run/status").body["run_id"] != first_run

    page.locator('button[data-action="open"]').click()
    expect(page.locator("tr[data-instance]")).to_have_count(2)
    opened = [i["instance_id"] for i in srv.get("/envs").body["instances"] if i["instance_id"] != "default"]
    assert len(opened) == 1
    shot(page, "controls")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator(f'tr[data-instance="{opened[0]}"] button[data-action="delete"]').click()
    expect(page.locator("tr[data-instance]")).to_have_count(1)
    assert [i["instance_id"] for i in srv.get("/envs").body["instances"]] == ["default"]


def test_a_control_post_without_the_csrf_token_changes_nothing(serve, page):
    srv = serve(**CARTPOLE)
    page.goto(srv.base + "/")
    answer = page.request.post(srv.base + "/dashboard/instances/default/run/pause")
    assert answer.status == 403
    assert srv.get("/run/status").body["state"] == "running"


def test_the_page_makes_at_most_one_request_a_second(serve, page):
    srv = serve(**CARTPOLE)
    srv.post("/reset", {"seed": 0})
    page.goto(srv.base + "/")
    page.wait_for_load_state("load")
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    first = page.evaluate("Date.now()")
    page.wait_for_timeout(5000)  # an interval to count over, not a synchronisation
    elapsed = (page.evaluate("Date.now()") - first) / 1000
    polls = [url for url in requests if "/dashboard/feed.json" in url]
    assert 1 <= len(polls) <= elapsed + 1, (len(polls), elapsed)
    others = [url for url in requests if url not in polls]
    assert all("/static/" in url for url in others), others  # at most the icon, which Chromium loads late


def test_history_filters_runs_and_compares_two_on_one_chart(serve, page):
    srv = serve(**CARTPOLE)
    play(srv, episodes=2, actions=(0,))
    srv.post("/run/reset")
    play(srv, episodes=3, actions=(0, 1))
    page.goto(srv.base + "/dashboard/runs/")
    expect(page.locator("#runs tbody tr")).to_have_count(2)
    shot(page, "history")
    page.locator("select[name=state]").select_option("paused")
    page.locator("button", has_text="Filter").click()
    expect(page.locator("#runs tbody")).to_contain_text("No run matches")
    page.goto(srv.base + "/dashboard/runs/?env=CartPole-v1")
    boxes = page.locator("#runs input[type=checkbox]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.locator("button", has_text="Compare").click()
    chart = page.locator("#reward-chart")
    expect(chart.locator("circle")).to_have_count(5)
    assert chart.locator("polyline.rolling").count() == 1  # the run with three episodes
    assert len(page.locator(".cards").all()) == 2
    shot(page, "compare")


def test_a_browser_signs_in_with_the_token_and_out_again(serve, page):
    srv = serve(**CARTPOLE, token="s3cret")
    page.goto(srv.base + "/")
    expect(page.locator("form input[name=token]")).to_be_visible()
    shot(page, "sign-in")
    page.fill("input[name=token]", "wrong")
    page.locator("button", has_text="Sign in").click()
    expect(page.locator(".wrong")).to_be_visible()
    page.fill("input[name=token]", "s3cret")
    page.locator("button", has_text="Sign in").click()
    expect(page.locator('tr[data-instance="default"]')).to_be_visible()
    assert "s3cret" not in page.url
    page.goto(srv.base + "/dashboard/runs/?token=s3cret")
    assert page.url == srv.base + "/dashboard/runs/"
    page.locator("button", has_text="Sign out").click()
    expect(page.locator("form input[name=token]")).to_be_visible()
    page.goto(srv.base + "/")
    expect(page.locator("form input[name=token]")).to_be_visible()


def test_the_admin_run_list_fits_1280_px(serve, page, django_user_model):
    srv = serve(**CARTPOLE)
    play(srv, episodes=2)
    srv.post("/run/reset")
    srv.post("/reset", {"seed": 1})  # the new run reaches the ledger with its first episode
    django_user_model.objects.create_superuser("admin", "admin@example.com", "pw-for-the-test")
    page.goto(srv.base + "/admin/runs/run/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "pw-for-the-test")
    page.locator("input[type=submit]").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(2)
    shot(page, "admin-runs")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    # ... and the list itself needs no scrolling of its own: every column is in view.
    assert page.evaluate("(r => r.scrollWidth <= r.clientWidth)(document.querySelector('.results'))")
    assert page.locator("#site-name").inner_text() == "gymsite"
    shot(page, "admin-runs")


def test_the_mcp_app_viewer_shows_a_tool_results_frame_and_chart(page):
    from gymenv.mcp_server.viewer import viewer_html

    page.set_content(viewer_html())  # top level: its parent is itself, which stands in for the host
    frame = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    stats = {"run_id": "0123456789abcdef", "env_id": "CartPole-v1", "instance_id": "default", "state": "running",
             "completed_episodes": 2, "num_episodes": 10, "average_reward": 15.5, "success_threshold": 475.0,
             "episodes": [{"episode_num": 1, "total_reward": 11.0, "done": True},
                          {"episode_num": 2, "total_reward": 20.0, "done": True},
                          {"episode_num": 3, "total_reward": 4.0, "done": False}]}
    for result in ({"content": [{"type": "image", "data": frame, "mimeType": "image/png"}]},
                   {"content": [], "structuredContent": stats}):
        page.evaluate("r => postMessage({jsonrpc: '2.0', method: 'ui/notifications/tool-result', params: r}, '*')",
                      result)
    expect(page.locator("#reward-chart circle")).to_have_count(2)  # the open episode is not charted
    expect(page.locator("#status")).to_contain_text("running, 2/10 episodes, average return 15.50")
    expect(page.locator("#frame")).to_be_visible()
    assert page.locator("#reward-chart line.threshold").count() == 1
    shot(page, "mcp-viewer")
