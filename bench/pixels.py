"""Pixel observations: Pong steps/s and bytes per step over REST (each obs_format) and MCP, beside raw ALE.

    python bench/pixels.py [--steps 300] [--calls 150]

Needs the [atari] extra (ale_py). One keep-alive client per row; the server is `runserver_gym
--import ale_py --env ALE/Pong-v5` with the ledger on, as a user runs it. "today" is the answer an
earlier gymsite gave for the same frame: the whole frame as JSON lists, no gzip (obs_format=json).
"""

import argparse
import asyncio
import gzip
import http.client
import json
import os
import socket
import sys
import tempfile
import time

from common import free_port, start, stop, summary, wait_for

ENV = "ALE/Pong-v5"


def raw_ale(steps: int) -> float:
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env = gym.make(ENV)
    env.reset(seed=0)
    t = time.perf_counter()
    for i in range(steps):
        _, _, term, trunc, _ = env.step(i % 6)
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t)


def rest(port: int, steps: int, obs_format: str, gzip_ok: bool) -> tuple[list[float], float]:
    """Latencies and mean bytes on the wire per step."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip" if gzip_ok else "identity"}
    conn.request("POST", "/reset", body=json.dumps({"seed": 0, "obs_format": "none"}), headers=headers)
    conn.getresponse().read()
    latencies, sizes = [], []
    for i in range(steps):
        body = json.dumps({"action": i % 6, "obs_format": obs_format})
        t = time.perf_counter()
        conn.request("POST", "/step", body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        latencies.append(time.perf_counter() - t)
        sizes.append(len(raw))
        text = gzip.decompress(raw) if resp.getheader("Content-Encoding") == "gzip" else raw
        if b'"done":true' in text:
            conn.request("POST", "/reset", body=json.dumps({"obs_format": "none"}), headers=headers)
            conn.getresponse().read()
    conn.close()
    return latencies, sum(sizes) / len(sizes)


async def mcp(port: int, calls: int) -> tuple[list[float], float]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(timeout=60) as http, \
            Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client:
        await client.call_tool("reset_env", {"seed": 0})
        latencies, sizes = [], []
        for i in range(calls):
            t = time.perf_counter()
            result = await client.call_tool("step_env", {"action": i % 6})
            latencies.append(time.perf_counter() - t)
            sizes.append(sum(len(getattr(c, "data", "") or getattr(c, "text", "")) for c in result.content)
                         + len(json.dumps(result.structured_content)))
            if result.structured_content.get("done"):
                await client.call_tool("reset_env", {})
    return latencies, sum(sizes) / len(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--calls", type=int, default=150)
    args = parser.parse_args()
    try:
        import ale_py  # noqa: F401
    except ImportError:
        raise SystemExit("bench/pixels.py needs the [atari] extra: pip install -e '.[atari]'") from None

    tmp = tempfile.mkdtemp(prefix="gymsite-pixels-")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", GYMSITE_DATA_DIR=tmp,
               DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3")
    print(f"{ENV}: raw in-process ALE {raw_ale(args.steps * 4):,.0f} steps/s", flush=True)
    port = free_port()
    proc = start([sys.executable, "manage.py", "runserver_gym", "--import", "ale_py", "--env", ENV,
                  "--num-episodes", "1000000", "--port", str(port)], env)
    rows = []
    try:
        wait_for(port, proc)
        rest(port, 20, "png", True)  # warm-up
        for label, fmt, gz in [("REST json, no gzip (today's answer)", "json", False),
                               ("REST json, gzip", "json", True), ("REST png", "png", False),
                               ("REST npy, gzip", "npy", True), ("REST none", "none", False)]:
            latencies, size = rest(port, args.steps, fmt, gz)
            rows.append((label, *summary(latencies), size))
            print(f"  measured {label}", flush=True)
        latencies, size = asyncio.run(mcp(port, args.calls))
        rows.append(("MCP step_env (png image content)", *summary(latencies), size))
    finally:
        stop(proc)

    today = rows[0]
    print(f"\n{'':36} {'steps/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'bytes/step':>11} {'x steps':>8} {'/ bytes':>8}")
    for label, rate, p50, p99, size in rows:
        print(f"{label:36} {rate:9,.1f} {p50:8.2f} {p99:8.2f} {size:11,.0f} {rate / today[1]:8.1f} "
              f"{today[4] / size:8.1f}")
    png = rows[2]
    print(f"\nREST png vs today's JSON answer: {png[1] / today[1]:.1f}x steps/s (target >= 10x), "
          f"{today[4] / png[4]:.1f}x fewer bytes (target >= 10x)")


if __name__ == "__main__":
    main()
