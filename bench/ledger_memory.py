"""Memory over a long run with the ledger on: RSS growth across 100,000 CartPole steps.

    python bench/ledger_memory.py [--steps 100000]

Two measurements in one run: GymService in-process (engine, run manager, ledger), and a live
runserver_gym driven over REST (adds Django, Ninja and uvicorn), whose RSS is read from /proc.
RSS is taken after a warm-up, so caches that fill once (imports, compiled SQL) do not count.
Target: at most 20 MB of growth.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WARM_UP = 2000


def rss_mb(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc")


def in_process(steps: int) -> tuple[float, float, float]:
    from gymenv import GymService

    service = GymService("CartPole-v1", num_episodes=10**9, max_steps_per_episode=10**9)
    action, started, before = 0, None, None
    service.reset(seed=0)
    for i in range(WARM_UP + steps):
        if i == WARM_UP:
            before, started = rss_mb(), time.perf_counter()
        answer = service.step(action)
        action = 1 - action
        if answer["done"]:
            service.reset()
        if i and i % 20000 == 0:
            print(f"  in-process: {i:,} steps, RSS {rss_mb():.1f} MB", flush=True)
    after = rss_mb()
    service.shutdown()
    return before, after, steps / (time.perf_counter() - started)


def over_rest(steps: int, env: dict) -> tuple[float, float, float]:
    from common import free_port, start, stop, wait_for
    from rest_step import connect

    port = free_port()
    proc = start([sys.executable, "manage.py", "runserver_gym", "--env", "CartPole-v1",
                  "--num-episodes", str(10**9), "--max-steps-per-episode", str(10**9), "--port", str(port)], env)
    try:
        wait_for(port, proc)
        conn = connect(port)
        headers = {"Content-Type": "application/json"}
        conn.request("POST", "/reset", body=b'{"seed": 0}', headers=headers)
        conn.getresponse().read()
        action, before, started = 0, None, None
        for i in range(WARM_UP + steps):
            if i == WARM_UP:
                before, started = rss_mb(proc.pid), time.perf_counter()
            conn.request("POST", "/step", body=b'{"action": %d}' % action, headers=headers)
            body = conn.getresponse().read()
            action = 1 - action
            if b'"done":true' in body:
                conn.request("POST", "/reset", body=b"{}", headers=headers)
                conn.getresponse().read()
            if i and i % 20000 == 0:
                print(f"  over REST: {i:,} steps, server RSS {rss_mb(proc.pid):.1f} MB", flush=True)
        return before, rss_mb(proc.pid), steps / (time.perf_counter() - started)
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="gymsite-memory-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/memory.sqlite3")
    os.environ.setdefault("GYMSITE_DATA_DIR", tmp)
    env = dict(os.environ, SDL_VIDEODRIVER="dummy")

    rows = [("GymService, in-process", *in_process(args.steps)),
            ("runserver_gym over REST", *over_rest(args.steps, env))]
    print(f"\n{args.steps:,} CartPole steps with the ledger on, after {WARM_UP:,} warm-up steps "
          f"({os.environ['DATABASE_URL'].split(':')[0]})")
    print(f"{'':26} {'RSS before':>11} {'RSS after':>10} {'growth':>8} {'steps/s':>9}")
    for label, before, after, rate in rows:
        print(f"{label:26} {before:9.1f} MB {after:7.1f} MB {after - before:+6.1f} MB {rate:9,.0f}")
    worst = max(after - before for _, before, after, _ in rows)
    print(f"\nworst growth: {worst:+.1f} MB (target <= 20 MB)")


if __name__ == "__main__":
    main()
