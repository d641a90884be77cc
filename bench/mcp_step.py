"""MCP step_env throughput and latency, as ratios against a no-op tool on the same server in the same run.

    python bench/mcp_step.py [--calls 3000] [--mode auto|legacy] [--json-response]

The server (a subprocess, so client and server do not share a GIL) serves gymsite's MCP app built
with `bench_noop=True`, which adds a `noop` tool: the MCP floor (transport, JSON-RPC, argument and
output-schema checks, the client's own work) with no env behind it. `step_env` runs CartPole-v1 on
the default instance with the ledger on, as production does. One `mcp.Client`, calls in sequence,
noop and step_env measured in alternating blocks so drift hits both alike; the resets between
episodes are not timed.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 0.85  # step_env calls/s at least this share of the no-op's


def serve_mcp(port: int, json_response: bool, ledger: bool) -> None:
    from gymenv.engine import Engine
    from gymenv.programmatic import engine_config, serve, setup_django

    setup_django()
    from gymenv.mcp import create_mcp_app

    engine = Engine(engine_config("CartPole-v1", render_mode=None, env_kwargs=None, allow_env=(),
                                  enable_run_manager=ledger, num_episodes=1_000_000, max_steps_per_episode=1000,
                                  success_threshold=None))
    engine.start()
    mcp_app, lifespan = create_mcp_app(engine=engine, allowed_hosts=["127.0.0.1", "localhost"], token=None,
                                       bench_noop=True, json_response=json_response)

    async def app(scope, receive, send):
        # What gymsite.asgi does for /mcp: run the session manager in the lifespan, route the path.
        if scope["type"] == "lifespan":
            await receive()
            async with lifespan():
                await send({"type": "lifespan.startup.complete"})
                await receive()
            await send({"type": "lifespan.shutdown.complete"})
        elif scope["type"] == "http" and scope["path"] == "/mcp":
            await mcp_app(scope, receive, send)
        else:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it every reply written as headers + body waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    try:
        serve(app, sock)
    finally:
        engine.shutdown()


async def measure(url: str, calls: int, mode: str, block: int) -> dict[str, list[float]]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    latencies: dict[str, list[float]] = {"noop": [], "step_env": []}
    async with httpx2.AsyncClient(timeout=httpx2.Timeout(30)) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            obs = (await client.call_tool("reset_env", {"seed": 0})).structured_content["observation"]

            async def step(timed: list[float] | None) -> None:
                nonlocal obs
                action = 1 if obs[2] + 0.5 * obs[3] > 0 else 0  # lean with the pole: long episodes
                t = time.perf_counter()
                result = await client.call_tool("step_env", {"action": action})
                if timed is not None:
                    timed.append(time.perf_counter() - t)
                if result.is_error:
                    raise SystemExit(f"step_env failed: {result.content}")
                body = result.structured_content
                obs = body["observation"]
                if body["done"]:
                    obs = (await client.call_tool("reset_env", {})).structured_content["observation"]

            async def noop(timed: list[float] | None) -> None:
                t = time.perf_counter()
                result = await client.call_tool("noop", {})
                if timed is not None:
                    timed.append(time.perf_counter() - t)
                if result.is_error:
                    raise SystemExit(f"noop failed: {result.content}")

            for _ in range(max(50, calls // 10)):  # warm-up: caches, JIT-less but allocator and DB warm
                await noop(None)
                await step(None)
            while len(latencies["step_env"]) < calls:
                n = min(block, calls - len(latencies["step_env"]))
                for _ in range(n):
                    await noop(latencies["noop"])
                for _ in range(n):
                    await step(latencies["step_env"])
    return latencies


def summary(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    return (len(ordered) / sum(ordered), ordered[len(ordered) // 2] * 1e3, ordered[int(len(ordered) * 0.99)] * 1e3)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start within 60 s")


def run_server(args, ledger: bool, env: dict) -> dict[str, list[float]]:
    import anyio

    port = free_port()
    cmd = [sys.executable, __file__, "--serve", str(port), "--ledger", "on" if ledger else "off"]
    cmd += ["--json-response"] if args.json_response else []
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(port, proc)
        return anyio.run(measure, f"http://127.0.0.1:{port}/mcp", args.calls, args.mode, args.block)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per tool")
    parser.add_argument("--block", type=int, default=100, help="calls per alternating block")
    parser.add_argument("--mode", default="auto", choices=["auto", "legacy"], help="mcp.Client protocol mode")
    parser.add_argument("--json-response", action="store_true", help="legacy POSTs answer JSON, not SSE")
    parser.add_argument("--ledger", choices=["on", "off", "both"], default="both")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_mcp(args.serve, args.json_response, args.ledger == "on")

    tmp = tempfile.mkdtemp(prefix="gymsite-bench-")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", GYMSITE_DATA_DIR=tmp,
               DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3")
    print(f"CartPole-v1, one mcp.Client (mode={args.mode}{', JSON responses' if args.json_response else ''}), "
          f"{args.calls} timed calls per tool in alternating blocks of {args.block}", flush=True)
    ledgers = {"on": [True], "off": [False], "both": [False, True]}[args.ledger]
    print(f"\n{'':30} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs noop':>8}")
    verdicts = []
    for ledger in ledgers:
        latencies = run_server(args, ledger, env)
        noop, step = summary(latencies["noop"]), summary(latencies["step_env"])
        label = f"ledger {'on' if ledger else 'off'}"
        for name, (rate, p50, p99) in ((f"noop ({label}: MCP floor)", noop), (f"step_env ({label})", step)):
            print(f"{name:30} {rate:9,.0f} {p50:8.3f} {p99:8.3f} {rate / noop[0]:8.0%}", flush=True)
        ratio = step[0] / noop[0]
        verdicts.append(f"{label}: step_env = {ratio:.0%} of noop calls/s "
                        f"(p50 x{step[1] / noop[1]:.2f}, p99 x{step[2] / noop[2]:.2f})"
                        f" -> {'met' if ratio >= TARGET else 'below'} the {TARGET:.0%} target")
    print("\n" + "\n".join(verdicts))


if __name__ == "__main__":
    main()
