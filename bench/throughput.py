"""Training-loop throughput over REST (SPEC 11-13), as ratios against references measured in the same run.

    python bench/throughput.py [--seconds 5] [--num-envs 64] [--memory 1000000]

For the ledger off and on (a runserver_gym process each), CartPole-v1 stepped through REST by one
keep-alive client (http.client): single steps on one instance, batches of --num-envs actions on one
instance, a vector instance of --num-envs sub-envs, and RemoteVectorEnv over the same; beside
gymnasium in-process (one env, and make_vec of the same size). --memory N steps a vector instance N
sub-env steps with the ledger on and reports how much the server's resident memory grew.
"""

import argparse
import http.client
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable

from common import ROOT, free_port, start, stop, wait_for

HEADERS = {"Content-Type": "application/json"}


class Client:
    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def post(self, path: str, body: bytes) -> bytes:
        self.conn.request("POST", path, body=body, headers=HEADERS)
        response = self.conn.getresponse()
        data = response.read()
        if response.status not in (200, 201):
            raise SystemExit(f"POST {path} answered {response.status}: {data[:300]!r}")
        return data


def timed(seconds: float, step: Callable[[], int]) -> float:
    """Steps per second of `step` (which returns the env steps it took), over about `seconds`."""
    warm = time.perf_counter() + seconds / 10
    while time.perf_counter() < warm:
        step()
    steps, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        steps += step()
    return steps / elapsed


def single_steps(client: Client, path: str) -> Callable[[], int]:
    client.post(f"{path}/reset", b'{"seed": 0}')
    state = {"action": 0}

    def step() -> int:
        state["action"] = 1 - state["action"]
        body = client.post(f"{path}/step", b'{"action": %d}' % state["action"])
        if b'"done":true' in body:
            client.post(f"{path}/reset", b"{}")
        return 1

    return step


def batches(client: Client, path: str, k: int) -> Callable[[], int]:
    client.post(f"{path}/reset", b'{"seed": 0}')
    body = json.dumps({"actions": [i % 2 for i in range(k)]}).encode()

    def step() -> int:
        answer = json.loads(client.post(f"{path}/step", body))
        if answer["done"]:
            client.post(f"{path}/reset", b"{}")
        return answer["steps"]

    return step


def vector_steps(client: Client, path: str, n: int) -> Callable[[], int]:
    client.post(f"{path}/reset", b'{"seed": 0}')
    bodies = [json.dumps({"action": [a] * n}).encode() for a in (0, 1)]
    state = {"t": 0}

    def step() -> int:
        state["t"] += 1
        client.post(f"{path}/step", bodies[state["t"] % 2])
        return n

    return step


def remote_vector(port: int, n: int) -> tuple[Callable[[], int], Callable[[], None]]:
    import numpy as np

    from gymenv.client import RemoteVectorEnv

    env = RemoteVectorEnv(f"http://127.0.0.1:{port}", "CartPole-v1", num_envs=n)
    env.reset(seed=0)
    actions = [np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)]
    state = {"t": 0}

    def step() -> int:
        state["t"] += 1
        env.step(actions[state["t"] % 2])
        return n

    return step, env.close


def in_process(seconds: float, n: int) -> tuple[float, float]:
    import gymnasium as gym
    import numpy as np

    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    state = {"action": 0}

    def one() -> int:
        state["action"] = 1 - state["action"]
        _, _, term, trunc, _ = env.step(state["action"])
        if term or trunc:
            env.reset()
        return 1

    vec = gym.make_vec("CartPole-v1", num_envs=n, vectorization_mode="sync")
    vec.reset(seed=0)
    actions = [np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)]

    def many() -> int:
        state["action"] = 1 - state["action"]
        vec.step(actions[state["action"]])
        return n

    return timed(seconds, one), timed(seconds, many)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS in /proc (Linux only)")


def server(ledger: bool, env: dict) -> tuple[int, object]:
    port = free_port()
    cmd = [sys.executable, "manage.py", "runserver_gym", "--env", "CartPole-v1", "--port", str(port),
           "--num-episodes", "1000000"]
    if not ledger:
        cmd.append("--no-run-manager")
    proc = start(cmd, env)
    wait_for(port, proc)
    return port, proc


def new_instance(client: Client, body: dict) -> str:
    return "/envs/" + json.loads(client.post("/envs", json.dumps(body).encode()))["instance_id"]


def rest_rates(client: Client, n: int, seconds: float):
    """(label, steps/s) of each REST case on one server."""
    yield "REST single steps, one instance", timed(seconds, single_steps(client, new_instance(client, {})))
    yield f"REST batches of {n}, one instance", timed(seconds, batches(client, new_instance(client, {}), n))
    vector = new_instance(client, {"num_envs": n})
    yield f"REST vector instance of {n}", timed(seconds, vector_steps(client, vector, n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per row")
    parser.add_argument("--num-envs", type=int, default=64, help="batch length and vector size")
    parser.add_argument("--memory", type=int, default=0, metavar="STEPS",
                        help="also step a vector instance STEPS sub-env steps (ledger on) and report RSS growth")
    args = parser.parse_args()
    n, seconds = args.num_envs, args.seconds
    tmp = tempfile.mkdtemp(prefix="gymsite-bench-")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", GYMSITE_DATA_DIR=tmp, PYTHONPATH=str(ROOT),
               DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3")
    print(f"CartPole-v1, {seconds:g} s per row, one keep-alive client, {os.cpu_count()} CPUs", flush=True)
    one, many = in_process(seconds, n)
    rows = [("gymnasium in-process, one env", None, one), (f"gymnasium make_vec({n}) in-process", None, many)]
    rates: dict[tuple[str, bool], float] = {}
    for ledger in (False, True):
        port, proc = server(ledger, env)
        try:
            client = Client(port)
            for label, rate in rest_rates(client, n, seconds):
                rates[label, ledger] = rate
                print(f"  measured {label}, ledger {'on' if ledger else 'off'}: {rate:,.0f} steps/s", flush=True)
            step, close = remote_vector(port, n)
            label = f"RemoteVectorEnv({n})"
            rates[label, ledger] = timed(seconds, step)
            close()
            print(f"  measured {label}, ledger {'on' if ledger else 'off'}: {rates[label, ledger]:,.0f} steps/s",
                  flush=True)
            if ledger and args.memory:
                client = Client(port)  # the first one idled past uvicorn's keep-alive while RemoteVectorEnv ran
                path = new_instance(client, {"num_envs": n})
                step = vector_steps(client, path, n)
                for _ in range(2000 // n + 1):  # warm: caches, the first episodes' rows
                    step()
                before = rss_mb(proc.pid)
                done = 0
                while done < args.memory:
                    done += step()
                grown = rss_mb(proc.pid) - before
                print(f"  memory: {done:,} vector steps grew the server's RSS by {grown:.1f} MB "
                      f"({before:.0f} -> {before + grown:.0f} MB; target <= 30 MB)", flush=True)
        finally:
            stop(proc)
    for label in dict.fromkeys(label for label, _ in rates):
        rows.append((label, rates[label, False], rates[label, True]))

    print(f"\n{'':40} {'ledger off':>12} {'ledger on':>12} {'ledger cost':>12}")
    for label, off, on in rows:
        if off is None:
            print(f"{label:40} {on:12,.0f} {'(no server)':>12}")
        else:
            print(f"{label:40} {off:12,.0f} {on:12,.0f} {1 - on / off:12.0%}")
    vector, single = rates[f"REST vector instance of {n}", True], rates["REST single steps, one instance", True]
    batch = rates[f"REST batches of {n}, one instance", True]
    vector_off = rates[f"REST vector instance of {n}", False]
    print(f"\nvector of {n} over REST, ledger on: {vector:,.0f} steps/s (target >= 30,000), {vector / single:.1f}x "
          f"single steps of the same server (target >= 25x), {vector / many:.0%} of make_vec in-process")
    print(f"batches of {n}, ledger on: {batch:,.0f} steps/s (target >= 15,000)")
    print(f"ledger cost on a vector step: {1 - vector / vector_off:.0%} of the ledger-off rate (target <= 25%)")


if __name__ == "__main__":
    main()
