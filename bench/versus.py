"""gymsite against what a user would pick instead, side by side in one run, same clients, alternating blocks.

    python bench/versus.py [--steps 4000] [--calls 1500] [--postgres postgres://postgres@127.0.0.1:5432/speed]

REST (one keep-alive http.client client, CartPole-v1): the bare ASGI floor (bench/rest_step.py), the
FastAPI + gymnasium app a user writes (bench/fastapi_peer.py), gymsite with the ledger off and on
(SQLite, and PostgreSQL with --postgres), all served by the same uvicorn set-up (uvloop, httptools).
MCP: the published gym-mcp-server 0.2.1 and gymsite, both driven by the same `mcp` 1.x client
(bench/mcp1_client.py) from a virtualenv this script makes for them (mcp<2; kept in --peer-venv);
gymsite's step_env against its no-op tool with the `mcp` 2.x client (bench/mcp_step.py), ledger on.
Concurrency: 16 REST clients on 16 instances of one gymsite server, ledger on.
Every server runs in its own process; targets are measured in alternating blocks so drift hits all alike.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, free_port, start, stop, summary, wait_for
from mcp_step import run_server as mcp2_against_noop
from rest_step import connect, drive

PEER = ("gym-mcp-server==0.2.1", "mcp<2")
# The peer gets uvicorn's fast paths too, as `pip install uvicorn[standard]` would give it.
PEER_EXTRAS = ("uvloop", "httptools")
CLIENTS = 16


def gymsite(*flags: str) -> list[str]:
    return [sys.executable, "manage.py", "runserver_gym", "--env", "CartPole-v1", "--num-episodes", "1000000",
            "--port", "{port}", *flags]


class Servers:
    """Server processes started at once and stopped together; each answers on its own port."""

    def __init__(self):
        self.procs: list = []

    def __enter__(self):
        return self

    def start(self, cmd: list[str], env: dict) -> int:
        port = free_port()
        proc = start([c.format(port=port) for c in cmd], env)
        self.procs.append(proc)
        wait_for(port, proc)
        return port

    def __exit__(self, *exc):
        for proc in self.procs:
            stop(proc)


def alternate(targets: dict[str, tuple[int, bool]], steps: int, block: int) -> dict[str, list[float]]:
    """REST steps on each (port, resets) target in blocks, the order rotating every round."""
    for port, reset in targets.values():
        drive(port, max(200, steps // 10), reset=reset)
    latencies: dict[str, list[float]] = {label: [] for label in targets}
    order = list(targets)
    while len(latencies[order[0]]) < steps:
        n = min(block, steps - len(latencies[order[0]]))
        for label in order:
            port, reset = targets[label]
            latencies[label] += drive(port, n, reset=reset)
        order.append(order.pop(0))
    return latencies


def concurrent(port: int, clients: int, steps: int) -> tuple[float, list[float]]:
    """`clients` threads, each on an instance of its own; (aggregate steps/s, every latency)."""
    prefixes = []
    for _ in range(clients):
        conn = connect(port)
        conn.request("POST", "/envs", body=b"{}", headers={"Content-Type": "application/json"})
        prefixes.append("/envs/" + json.loads(conn.getresponse().read())["instance_id"])
        conn.close()
    results: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    go = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        try:
            drive(port, 50, path_prefix=prefixes[i])  # warm-up, untimed
            go.wait()
            results[i] = drive(port, steps, path_prefix=prefixes[i])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
            go.abort()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    go.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise SystemExit(f"a concurrent client failed: {errors[0]!r}")
    every = [x for r in results for x in r]
    return len(every) / wall, every


def peer_python(venv: Path) -> Path:
    """The python of a virtualenv holding gym-mcp-server 0.2.1 and an mcp 1.x client, made once."""
    python = venv / "bin" / "python"
    marker = venv / "gymsite-bench.json"
    wanted = json.dumps([*PEER, *PEER_EXTRAS])
    if not (python.exists() and marker.exists() and marker.read_text() == wanted):
        print(f"making the peer's virtualenv in {venv} ({', '.join(PEER)})...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEER, *PEER_EXTRAS], check=True)
        marker.write_text(wanted)
    return python


def table(title: str, rows: list[tuple[str, tuple[float, float, float]]], reference: str, unit: str) -> dict:
    rates = dict(rows)
    ref = rates[reference][0]
    print(f"\n{title}\n{'':44} {unit:>9} {'p50 ms':>8} {'p99 ms':>8} {'vs ref':>9}")
    for label, (rate, p50, p99) in rows:
        print(f"{label:44} {rate:9,.0f} {p50:8.3f} {p99:8.3f} {rate / ref:8.2f}x")
    return {label: s[0] for label, s in rows}


def verdict(name: str, value: float, target: float, *, at_most: bool = False, fmt: str = "{:.2f}x") -> str:
    met = value <= target if at_most else value >= target
    return f"  {name}: {fmt.format(value)} (target {'<=' if at_most else '>='} {fmt.format(target)}) " \
           f"{'met' if met else 'BELOW'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4000, help="timed REST steps per target")
    parser.add_argument("--block", type=int, default=250, help="REST steps per alternating block")
    parser.add_argument("--calls", type=int, default=1500, help="timed MCP calls per target")
    parser.add_argument("--mcp-block", type=int, default=100, help="MCP calls per alternating block")
    parser.add_argument("--postgres", metavar="URL", help="also measure the ledger on this PostgreSQL database")
    parser.add_argument("--doors", default="rest,mcp1,mcp2", help="which of rest,mcp1,mcp2 to measure")
    parser.add_argument("--peer-venv", type=Path, default=Path(tempfile.gettempdir()) / "gymsite-bench-peer-venv",
                        help="where the gym-mcp-server virtualenv is made (once) and kept")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="gymsite-bench-")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", GYMSITE_DATA_DIR=tmp, DATABASE_URL=f"sqlite:///{tmp}/bench.sqlite3")
    doors = set(args.doors.split(","))
    python = peer_python(args.peer_venv) if "mcp1" in doors else None
    load = os.getloadavg()
    print(f"CartPole-v1; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores", flush=True)
    lines = []
    if "rest" in doors:
        lines += rest_door(args, env)
    if python is not None:
        lines += mcp1_door(args, env, python)
    if "mcp2" in doors:
        lines += mcp2_door(args, env)
    print("\nTargets\n" + "\n".join(lines))


FASTAPI = "FastAPI + gymnasium (bench/fastapi_peer.py)"


def rest_door(args, env: dict) -> list[str]:
    bench = str(ROOT / "bench")
    with Servers() as servers:
        targets = {
            "bare ASGI JSON endpoint (floor)": (servers.start([sys.executable, f"{bench}/rest_step.py",
                                                               "--serve-bare", "{port}"], env), False),
            FASTAPI: (servers.start([sys.executable, f"{bench}/versus.py", "--serve-fastapi", "{port}"], env), True),
            "gymsite, ledger off": (servers.start(gymsite("--no-run-manager"), env), True),
            "gymsite, ledger on (SQLite)": (servers.start(gymsite(), env), True),
        }
        if args.postgres:
            targets["gymsite, ledger on (PostgreSQL)"] = (
                servers.start(gymsite(), {**env, "DATABASE_URL": args.postgres}), True)
        print(f"REST: {args.steps} steps per target in alternating blocks of {args.block}...", flush=True)
        rest = alternate(targets, args.steps, args.block)
        print(f"REST, {CLIENTS} clients on {CLIENTS} instances...", flush=True)
        aggregate, spread = concurrent(targets["gymsite, ledger on (SQLite)"][0], CLIENTS, args.steps // CLIENTS * 2)
    _, c50, c99 = summary(spread)
    rates = table("REST step, one keep-alive http.client client", [(k, summary(v)) for k, v in rest.items()],
                  FASTAPI, "steps/s")
    print(f"{f'gymsite, ledger on, {CLIENTS} clients on {CLIENTS} instances':44} "
          f"{aggregate:9,.0f} {c50:8.3f} {c99:8.3f}   (aggregate; p99/p50 {c99 / c50:.1f})")
    peer, off, on = rates[FASTAPI], rates["gymsite, ledger off"], rates["gymsite, ledger on (SQLite)"]
    lines = [verdict("REST ledger on vs FastAPI", on / peer, 1.2),
             verdict("REST ledger off vs FastAPI", off / peer, 1.5),
             verdict("ledger cost, SQLite", 1 - on / off, 0.10, at_most=True, fmt="{:.1%}")]
    if args.postgres:
        lines.append(verdict("ledger cost, PostgreSQL", 1 - rates["gymsite, ledger on (PostgreSQL)"] / off, 0.15,
                             at_most=True, fmt="{:.1%}"))
    return [*lines, verdict(f"{CLIENTS} clients aggregate vs one client", aggregate / on, 1.0),
            verdict(f"{CLIENTS} clients p99/p50", c99 / c50, 10.0, at_most=True, fmt="{:.1f}")]


def mcp1_door(args, env: dict, python: Path) -> list[str]:
    with Servers() as servers:
        targets = {
            "gym-mcp-server 0.2.1": servers.start([str(python), "-m", "gym_mcp_server", "--env", "CartPole-v1",
                                                   "--transport", "streamable-http", "--host", "127.0.0.1",
                                                   "--port", "{port}"], env),
            "gymsite, ledger off": servers.start(gymsite("--no-run-manager"), env),
            "gymsite, ledger on": servers.start(gymsite(), env),
        }
        print(f"\nMCP, mcp 1.x client: {args.calls} step_env calls per target in blocks of {args.mcp_block}...",
              flush=True)
        out = subprocess.run([str(python), str(ROOT / "bench" / "mcp1_client.py"), str(args.calls),
                              str(args.mcp_block), *(f"{label}=http://127.0.0.1:{port}/mcp"
                                                     for label, port in targets.items())],
                             check=True, capture_output=True, text=True, env=env).stdout
    rates = table("MCP step_env, mcp 1.x client (ClientSession, handshake era)",
                  [(label, summary(lat)) for label, lat in json.loads(out).items()], "gym-mcp-server 0.2.1", "calls/s")
    return [verdict("MCP 1.x client, gymsite ledger on vs gym-mcp-server",
                    rates["gymsite, ledger on"] / rates["gym-mcp-server 0.2.1"], 1.5)]


def mcp2_door(args, env: dict) -> list[str]:
    print(f"\nMCP, mcp 2.x client: {args.calls} calls per tool in blocks of {args.mcp_block}...", flush=True)
    got = mcp2_against_noop(argparse.Namespace(calls=args.calls, mode="auto", block=args.mcp_block), True, env)
    rates = table("MCP, mcp 2.x client (mcp.Client, 2026-07-28), ledger on",
                  [("no-op tool (MCP floor)", summary(got["noop"])), ("step_env", summary(got["step_env"]))],
                  "no-op tool (MCP floor)", "calls/s")
    return [verdict("MCP 2.x client, step_env vs no-op", rates["step_env"] / rates["no-op tool (MCP floor)"], 0.9,
                    fmt="{:.0%}")]


def serve_fastapi(port: int) -> None:
    from common import listen
    from fastapi_peer import app

    from gymsite.serving import serve

    serve(app, listen(port))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-fastapi"]:
        serve_fastapi(int(sys.argv[2]))
    else:
        main()
