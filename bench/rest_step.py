"""REST step throughput and latency, as ratios against references measured in the same run.

    python bench/rest_step.py [--steps 5000]

References: raw in-process gymnasium (the ceiling), and a bare ASGI JSON endpoint served by the
same uvicorn set-up gymsite uses (the HTTP floor). gymsite is measured with the ledger off and on.
One keep-alive client (http.client), CartPole-v1, reset whenever an episode ends.
"""

import argparse
import http.client
import json
import os
import socket
import sys
import tempfile
import time

from common import free_port, listen, start, stop, summary, wait_for


async def bare_app(scope, receive, send):
    """The floor: read a JSON body, answer a small JSON object; nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    action = json.loads(body)["action"] if body else 0
    out = json.dumps({"success": True, "observation": [0.01, 0.02, 0.03, 0.04], "reward": 1.0,
                      "terminated": False, "truncated": False, "done": False, "info": {}, "action": action}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]})
    await send({"type": "http.response.body", "body": out})


def serve_bare(port: int) -> None:
    from gymsite.serving import serve

    serve(bare_app, listen(port))


def connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    # http.client sends headers and body in two writes: without NODELAY, Nagle plus delayed ACKs
    # add ~40 ms to every request and measure the kernel, not the server.
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def drive(port: int, steps: int, path_prefix: str = "", reset: bool = True) -> list[float]:
    conn = connect(port)
    headers = {"Content-Type": "application/json"}
    if reset:
        conn.request("POST", f"{path_prefix}/reset", body=b'{"seed": 0}', headers=headers)
        conn.getresponse().read()
    latencies = []
    action = 0
    for _ in range(steps):
        t = time.perf_counter()
        conn.request("POST", f"{path_prefix}/step", body=b'{"action": %d}' % action, headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        latencies.append(time.perf_counter() - t)
        if resp.status != 200:
            raise SystemExit(f"step failed: {resp.status} {body[:200]!r}")
        action = 1 - action
        if reset and b'"done":true' in body:
            conn.request("POST", f"{path_prefix}/reset", body=b"{}", headers=headers)
            conn.getresponse().read()
    conn.close()
    return latencies


def raw_gymnasium(steps: int) -> float:
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    action = 0
    t = time.perf_counter()
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(action)
        action = 1 - action
        if term or trunc:
            env.reset()
    return steps / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        return serve_bare(args.serve_bare)

    tmp = tempfile.mkdtemp(prefix="gymsite-bench-")
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", GYMSITE_DATA_DIR=tmp,
               DATABASE_URL=os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/bench.sqlite3")
    rows = [("raw gymnasium (in-process)", raw_gymnasium(args.steps * 4), None, None)]
    print(f"CartPole-v1, {args.steps} steps per row after {args.steps // 10} warm-up steps, one keep-alive client",
          flush=True)

    targets = [
        ("bare ASGI JSON endpoint (floor)", [sys.executable, __file__, "--serve-bare", "{port}"], False),
        ("gymsite REST, ledger off", [sys.executable, "manage.py", "runserver_gym", "--env", "CartPole-v1",
                                      "--no-run-manager", "--port", "{port}"], True),
        ("gymsite REST, ledger on", [sys.executable, "manage.py", "runserver_gym", "--env", "CartPole-v1",
                                     "--num-episodes", "1000000", "--port", "{port}"], True),
    ]
    for label, cmd, reset in targets:
        port = free_port()
        proc = start([c.format(port=port) for c in cmd], env)
        try:
            wait_for(port, proc)
            drive(port, args.steps // 10, reset=reset)
            rate, p50, p99 = summary(drive(port, args.steps, reset=reset))
        finally:
            stop(proc)
        rows.append((label, rate, p50, p99))
        print(f"  measured {label}: {rate:,.0f} steps/s", flush=True)

    floor = rows[1][1]
    print(f"\n{'':34} {'steps/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs floor':>9}")
    for label, rate, p50, p99 in rows:
        lat = f"{p50:8.3f} {p99:8.3f}" if p50 is not None else f"{'-':>8} {'-':>8}"
        print(f"{label:34} {rate:10,.0f} {lat} {rate / floor:9.0%}")
    off, on = rows[2][1], rows[3][1]
    print(f"\nREST step vs HTTP floor: {off / floor:.0%} (target >= 60%); "
          f"ledger cost: {1 - on / off:.0%} of throughput (target <= 15%)")


if __name__ == "__main__":
    main()
