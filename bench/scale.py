"""Aggregate REST step throughput with 1, 2, 4 ... clients, each on its own instance, in parallel:
the in-process backend (one server process) against the Ray backend (instances in Ray actors, one
front process per core, clients spread over them). Ratios against the single-client rate of the
same backend, measured in the same run.

    python bench/scale.py [--seconds 5] [--max-clients N] [--ledger] [--ray-address ADDR]

Without --ray-address a throwaway Ray head is started on loopback (one CPU per core seen) and ended
after. --ledger turns the run manager on (with DATABASE_URL, else an SQLite file): every step is
then also a committed ledger write. CartPole-v1; each client is a process of its own with one
keep-alive connection, resetting whenever an episode ends.

Targets (SPEC 16, issue 14): with C cores, Ray with C clients on C instances >= 0.6 x C x its
single-client rate; Ray's single-client rate >= half the in-process one.
"""

import argparse
import http.client
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import free_port, start, stop, wait_for

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def cores_seen() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def call(conn: http.client.HTTPConnection, method: str, path: str, body: bytes = b"{}") -> bytes:
    conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    if resp.status >= 300:
        raise SystemExit(f"{method} {path}: {resp.status} {data[:300]!r}")
    return data


def client(port: int, seconds: float, barrier, results) -> None:
    """One agent: its own instance, then steps until the time is up; reports how many (None: it failed)."""
    try:
        conn = connect(port)
        iid = json.loads(call(conn, "POST", "/envs"))["instance_id"]
        call(conn, "POST", f"/envs/{iid}/reset", b'{"seed": 0}')
        drive(conn, iid, time.perf_counter() + 0.5)  # warm-up
        barrier.wait(timeout=300)
        conn.close()  # a fresh connection: the server may have closed this one while the others started
        conn = connect(port)
        results.put(drive(conn, iid, time.perf_counter() + seconds))
        call(conn, "DELETE", f"/envs/{iid}")
        conn.close()
    except BaseException:
        results.put(None)
        raise


def drive(conn: http.client.HTTPConnection, iid: str, deadline: float) -> int:
    steps, action = 0, 0
    while time.perf_counter() < deadline:
        body = call(conn, "POST", f"/envs/{iid}/step", b'{"action": %d}' % action)
        steps += 1
        action = 1 - action
        if b'"done":true' in body:
            call(conn, "POST", f"/envs/{iid}/reset")
    return steps


def aggregate(ports: list[int], clients: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(clients), ctx.Queue()
    procs = [ctx.Process(target=client, args=(ports[k % len(ports)], seconds, barrier, results))
             for k in range(clients)]
    for p in procs:
        p.start()
    counts = [results.get(timeout=seconds + 300) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    if None in counts:
        raise SystemExit("a client failed (its traceback is above)")
    return sum(counts) / seconds


class RayHead:
    """A throwaway local Ray head on loopback, ended with its process group."""

    def __init__(self, num_cpus: int):
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp_dir = Path(tempfile.mkdtemp(prefix="ray-b-", dir="/tmp"))
        ray = str(Path(sys.executable).parent / "ray")
        self.proc = subprocess.Popen(
            [ray, "start", "--head", "--block", "--port", str(self.port), "--node-ip-address", "127.0.0.1",
             "--num-cpus", str(num_cpus), "--include-dashboard", "false", "--disable-usage-stats",
             "--dashboard-agent-listen-port", str(free_port()), "--temp-dir", str(self.temp_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            env=dict(os.environ, **RAY_ENV))
        deadline = time.monotonic() + 120
        while subprocess.run([ray, "status", "--address", self.address], capture_output=True, timeout=60,
                             env=dict(os.environ, **RAY_ENV)).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit("the Ray head did not come up within 120 s")
            time.sleep(1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def fronts(count: int, extra: list[str], env: dict) -> tuple[list[int], list[subprocess.Popen]]:
    ports, procs = [], []
    for _ in range(count):  # one after the other: the first brings the database up to date
        port = free_port()
        procs.append(start([sys.executable, "manage.py", "runserver_gym", "--env", "CartPole-v1",
                            "--num-episodes", "1000000", "--port", str(port), *extra], env))
        wait_for(port, procs[-1])
        ports.append(port)
    return ports, procs


def measure(label: str, ports: list[int], counts: list[int], seconds: float) -> dict[int, float]:
    rates = {}
    for n in counts:
        rates[n] = aggregate(ports, n, seconds)
        print(f"  {label}, {n} client(s): {rates[n]:,.0f} steps/s", flush=True)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per point")
    parser.add_argument("--max-clients", type=int, help="default: max(4, cores)")
    parser.add_argument("--ledger", action="store_true", help="run manager on: every step also a ledger write")
    parser.add_argument("--ray-address", help="an existing Ray cluster (default: a throwaway local head)")
    args = parser.parse_args()

    cores = cores_seen()
    top = args.max_clients or max(4, cores)
    counts = [n for n in (2 ** k for k in range(12)) if n <= top]
    tmp = tempfile.mkdtemp(prefix="gymsite-scale-")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", GYMSITE_DATA_DIR=tmp, **RAY_ENV,
               DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/scale.sqlite3")
    ledger = [] if args.ledger else ["--no-run-manager"]
    print(f"cores seen: {cores} (os.cpu_count() {os.cpu_count()}); CartPole-v1, {args.seconds:g} s per point, "
          f"ledger {'on' if args.ledger else 'off'}; clients {counts}", flush=True)

    ports, procs = fronts(1, ledger, env)
    try:
        local = measure("in-process backend, 1 process", ports, counts, args.seconds)
    finally:
        for proc in procs:
            stop(proc)

    head = None if args.ray_address else RayHead(cores)
    address = args.ray_address or head.address
    try:
        ports, procs = fronts(cores, [*ledger, "--backend", "ray", "--ray-address", address], env)
        try:
            ray = measure(f"Ray backend, {cores} front process(es)", ports, counts, args.seconds)
        finally:
            for proc in procs:
                stop(proc)
    finally:
        if head is not None:
            head.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\n{'clients':>7} {'in-process':>11} {'x single':>9} {'Ray':>9} {'x single':>9} {'Ray target':>11}")
    for n in counts:
        target = f">= {0.6 * n:.1f}" if n <= cores else "-"
        print(f"{n:7} {local[n]:11,.0f} {local[n] / local[1]:9.2f} {ray[n]:9,.0f} {ray[n] / ray[1]:9.2f} {target:>11}")
    c = max(n for n in counts if n <= cores)
    print(f"\nRay, {c} clients on {c} cores: {ray[c] / ray[1]:.2f} x single-client (target >= {0.6 * c:.1f}); "
          f"single client, Ray vs in-process: {ray[1] / local[1]:.0%} (target >= 50%)")


if __name__ == "__main__":
    main()
