"""The dashboard: what is served, live instances, run progress, reward charts and the latest frame."""



def play_episodes(srv, n, steps=3):
    for _ in range(n):
        srv.post("/reset", {"seed": 0})
        for _ in range(steps):
            srv.post("/step", {"action": 0})


def test_the_dashboard_shows_run_progress_and_a_reward_chart(serve):
    srv = serve(env_id="CartPole-v1", run_manager=True, num_episodes=4, max_steps_per_episode=3)
    play_episodes(srv, 2)
    page = srv.client.get(srv.base + "/").text
    run_id = srv.get("/run/status").body["run_id"]
    assert run_id in page and "2/4 episodes done (50.0%)" in page
    assert "<polyline" in page and "Reward per episode (last 2" in page
    assert 'src="/dashboard/frame/default.png"' in page


def test_the_dashboard_says_when_nothing_is_recorded(serve):
    srv = serve(env_id="CartPole-v1")
    page = srv.client.get(srv.base + "/").text
    assert "The run manager is off" in page and "<polyline" not in page


def test_the_frame_endpoint_serves_the_current_frame_as_png(serve):
    srv = serve(env_id="CartPole-v1")
    assert srv.get("/dashboard/frame/default.png").body["code"] == "reset_required"
    srv.post("/reset", {"seed": 0})
    r = srv.client.get(srv.base + "/dashboard/frame/default.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content.startswith(b"\x89PNG")
    assert srv.get("/dashboard/frame/nope.png").status == 404


def test_the_dashboard_needs_the_token_and_a_browser_can_carry_it_in_a_cookie(serve):
    srv = serve(token="s3cret", env_id="CartPole-v1")
    assert srv.get("/").status == 401
    r = srv.client.get(srv.base + "/?token=s3cret")
    assert r.status_code == 200 and "gymsite_token" in r.headers.get("set-cookie", "")
    assert srv.client.get(srv.base + "/dashboard/frame/default.png").status_code != 401
