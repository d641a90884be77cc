"""MCP step_env throughput and latency, as ratios against a no-op tool on the same server in the same run.

    python bench/mcp_step.py [--calls 3000] [--mode auto|legacy] [--json-response]

The server (a subprocess, so client and server do not share a GIL) serves gymsite's MCP server, its
real tools plus a `noop` tool added here: the MCP floor (transport, JSON-RPC, argument and
output-schema checks, the client's own work) with no env behind it. `step_env` runs CartPole-v1 on
the default instance with the ledger on, as production does. One `mcp.Client`, calls in sequence,
noop and step_env measured in alternating blocks so drift hits both alike; the resets between
episodes are not timed.
"""

import argparse
import os
import sys
import tempfile
import time

from common import free_port, listen, start, stop, summary, wait_for

TARGET = 0.85  # step_env calls/s at least this share of the no-op's


def serve_mcp(port: int, ledger: bool) -> None:
    """gymsite's MCP server over HTTP, with the no-op tool that exists only for this benchmark."""
    from typing import Annotated

    from mcp.types import CallToolResult
    from pydantic import BaseModel

    from gymenv.mcp_server import build_server, http_app
    from gymenv.mcp_server.results import success
    from gymsite import serving

    class NoopOut(BaseModel):
        success: bool = True

    engine = serving.build_engine(serving.ServerConfig(env_id="CartPole-v1", run_manager=ledger,
                                                       num_episodes=1_000_000))
    server = build_server(engine)

    # Answered as the real tools answer (success(): structured content, JSON text, output-schema check).
    @server.tool(description="Does nothing: the cost of an MCP tool call itself.")
    async def noop() -> Annotated[CallToolResult, NoopOut]:
        return success(NoopOut())

    try:
        serving.serve(http_app(server, ["127.0.0.1"]), listen(port))
    finally:
        engine.shutdown()


async def measure(url: str, calls: int, mode: str, block: int) -> dict[str, list[float]]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    latencies: dict[str, list[float]] = {"noop": [], "step_env": []}
    async with (
        httpx2.AsyncClient(timeout=httpx2.Timeout(30)) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
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


def run_server(args, ledger: bool, env: dict) -> dict[str, list[float]]:
    import anyio

    port = free_port()
    proc = start([sys.executable, __file__, "--serve", str(port), "--ledger", "on" if ledger else "off"], env)
    try:
        wait_for(port, proc)
        return anyio.run(measure, f"http://127.0.0.1:{port}/mcp", args.calls, args.mode, args.block)
    finally:
        stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000, help="timed calls per tool")
    parser.add_argument("--block", type=int, default=100, help="calls per alternating block")
    parser.add_argument("--mode", default="auto", choices=["auto", "legacy"], help="mcp.Client protocol mode")
    parser.add_argument("--ledger", choices=["on", "off", "both"], default="both")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_mcp(args.serve, args.ledger == "on")

    tmp = tempfile.mkdtemp(prefix="gymsite-bench-")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", GYMSITE_DATA_DIR=tmp,
               DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3")
    print(f"CartPole-v1, one mcp.Client (mode={args.mode}), "
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
