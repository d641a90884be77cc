"""The dashboard's live feed under load: 64 live instances and 1,000 past runs in the ledger.

    python bench/dashboard_feed.py [--calls 200] [--past-runs 1000] [--instances 64]

The feed (GET /dashboard/feed.json, what each open tab asks once a second) is timed beside GET
/health on the same server in the same run (the floor: a route that does nothing). The watched
instance renders its frame into the feed (CartPole, rgb_array), as the page asks it to. Target:
the feed's p50 under 50 ms.
"""

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
import uuid
from datetime import timedelta

from common import ROOT, free_port, start, stop, summary, wait_for

EPISODES_PER_PAST_RUN = 20


def seed_ledger(database_url: str, past_runs: int) -> None:
    """Past runs written straight into the ledger (migrated first), each with its episodes."""
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gymsite.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from runs.models import Episode, Run

    call_command("migrate", verbosity=0)
    now = timezone.now()
    runs = [Run(run_id=uuid.uuid4(), instance_id=f"past{i}", env_id="CartPole-v1", num_episodes=EPISODES_PER_PAST_RUN,
                max_steps_per_episode=500, success_threshold=475.0, state="completed", owner="bench:1",
                completed_episodes=EPISODES_PER_PAST_RUN, total_steps=EPISODES_PER_PAST_RUN * 30,
                total_reward=EPISODES_PER_PAST_RUN * 30.0, started_at=now - timedelta(hours=i + 1),
                ended_at=now - timedelta(hours=i)) for i in range(past_runs)]
    Run.objects.bulk_create(runs, batch_size=500)
    Episode.objects.bulk_create(
        [Episode(run=run, episode_num=n, seed=n, total_steps=30, total_reward=30.0, final_reward=1.0, done=True,
                 terminated=True, started_at=run.started_at, ended_at=run.ended_at, observation_json=[0, 0, 0, 0])
         for run in runs for n in range(1, EPISODES_PER_PAST_RUN + 1)], batch_size=1000)


def call(conn: http.client.HTTPConnection, method: str, path: str, body=None) -> dict:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
    answer = conn.getresponse()
    data = answer.read()
    assert answer.status in (200, 201), (path, answer.status, data[:200])
    return json.loads(data)


def timed(conn: http.client.HTTPConnection, path: str, calls: int) -> list[float]:
    latencies = []
    for _ in range(calls):
        t0 = time.perf_counter()
        call(conn, "GET", path)
        latencies.append(time.perf_counter() - t0)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--past-runs", type=int, default=1000)
    parser.add_argument("--instances", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        database_url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3"
        seed_ledger(database_url, args.past_runs)
        port = free_port()
        env = {**os.environ, "DATABASE_URL": database_url, "GYMSITE_DATA_DIR": tmp, "SDL_VIDEODRIVER": "dummy"}
        proc = start([sys.executable, str(ROOT / "manage.py"), "runserver_gym", "--env", "CartPole-v1",
                      "--port", str(port), "--max-instances", str(args.instances)], env)
        try:
            wait_for(port, proc)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            ids = ["default"] + [call(conn, "POST", "/envs", {})["instance_id"] for _ in range(args.instances - 1)]
            for iid in ids:  # every instance live, with an episode in progress and a few steps behind it
                call(conn, "POST", f"/envs/{iid}/reset", {"seed": 0})
                for _ in range(3):
                    call(conn, "POST", f"/envs/{iid}/step", {"action": 0})
            feed = call(conn, "GET", "/dashboard/feed.json?focus=default")
            assert len(feed["instances"]) == args.instances and feed["focus"]["frame"]
            timed(conn, "/dashboard/feed.json?focus=default", 20)  # warm-up
            health = summary(timed(conn, "/health", args.calls))
            feed_rate = summary(timed(conn, "/dashboard/feed.json?focus=default", args.calls))
        finally:
            stop(proc)
    print(f"{args.instances} live instances, {args.past_runs} past runs ({EPISODES_PER_PAST_RUN} episodes each), "
          f"{args.calls} calls each, one keep-alive client")
    print(f"{'route':<34}{'calls/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'p50 / health':>15}")
    for name, (rate, p50, p99) in (("GET /health (floor)", health), ("GET /dashboard/feed.json", feed_rate)):
        print(f"{name:<34}{rate:>10.0f}{p50:>10.2f}{p99:>10.2f}{p50 / health[1]:>15.1f}")
    print(f"feed p50 {feed_rate[1]:.1f} ms: {'within' if feed_rate[1] < 50 else 'OVER'} the 50 ms budget")


if __name__ == "__main__":
    main()
