"""Where a REST step's time goes, in µs per step, stage by stage, in one process.

    python bench/stages.py [--steps 3000]

Each stage is measured by difference between nested calls on a real server's parts (CartPole-v1):
the env alone; the owner thread's op_step (env + validation + the answer's model, ledger off);
the ledger's share (op_step with the run manager on, less off); the hop (a no-op through
Instance.call from the event loop); encode (the answer's JSON and HttpResponse); Django/Ninja (a
whole ASGI call of the app, less engine.step and encode). HTTP parse and send come from the bare
ASGI floor over a real socket (bench/rest_step.py). --instructions counts instructions per step
under callgrind instead of timing: counts that the other processes on the machine do not move.
"""

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time

from common import ROOT

os.chdir(ROOT)


class Actions:
    """0, 1, 0, ... as bench/rest_step.py's client sends them (CartPole episodes of a few dozen steps)."""

    def __init__(self):
        self.last = 1

    def __call__(self) -> int:
        self.last = 1 - self.last
        return self.last


def per_step(fn, steps: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(steps):
        fn()
    return (time.perf_counter() - t) / steps * 1e6


async def per_step_async(fn, steps: int) -> float:
    await fn()
    t = time.perf_counter()
    for _ in range(steps):
        await fn()
    return (time.perf_counter() - t) / steps * 1e6


def asgi_step(app, path: bytes, body: bytes):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path.decode(), "raw_path": path, "query_string": b"", "root_path": "",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}

    async def call():
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        if sent[0]["status"] != 200:
            raise SystemExit(f"{path!r}: {sent[0]['status']} {sent[1]['body'][:200]!r}")
        return sent[1]["body"]

    return call


STAGES = ("env", "op_step_off", "op_step_on", "hop", "engine_off", "encode", "asgi_off", "asgi_on")


def measure(stage: str, steps: int) -> float:
    """µs per step of one stage, after as many warm-up steps."""
    import gymnasium as gym

    from gymenv.engine import DEFAULT_INSTANCE
    from gymsite import serving
    from gymsite.responses import answer

    action = Actions()
    if stage == "env":
        env = gym.make("CartPole-v1")
        env.reset(seed=0)

        def env_step():
            if env.step(action())[2]:
                env.reset(seed=0)

        return per_step(env_step, steps)
    config = serving.ServerConfig(env_id="CartPole-v1", run_manager=stage.endswith("_on"), num_episodes=10**6,
                                  max_steps_per_episode=10**6)
    engine = serving.build_engine(config)
    app = serving.build_app(engine, config)
    instance = engine.get(DEFAULT_INSTANCE)
    try:
        if stage.startswith("op_step"):
            def op_step():  # on the owner thread itself: no hop
                if instance.op_step(action()).done:
                    instance.op_reset(0)

            instance.call_sync(instance.op_reset, 0)
            return instance.call_sync(per_step, op_step, steps)

        async def on_loop() -> float:
            await engine.reset(DEFAULT_INSTANCE, seed=0)

            async def via_engine():
                out = await engine.step(DEFAULT_INSTANCE, action())
                if out.done:
                    await engine.reset(DEFAULT_INSTANCE, seed=0)
                return out

            if stage == "hop":
                return await per_step_async(lambda: instance.call(int), steps)
            if stage == "engine_off":
                return await per_step_async(via_engine, steps)
            if stage == "encode":
                out = await via_engine()
                return per_step(lambda: answer(out), steps)
            steps_of = [asgi_step(app, b"/step", b'{"action": 0}'), asgi_step(app, b"/step", b'{"action": 1}')]
            reset = asgi_step(app, b"/reset", b"{}")

            async def via_asgi():
                if b'"done":true' in await steps_of[action()]():
                    await reset()

            return await per_step_async(via_asgi, steps)

        return asyncio.run(on_loop())
    finally:
        engine.shutdown()


def instructions(stage: str, steps: int) -> float:
    """Instructions per step of `stage` under callgrind: the difference between a run of 2*steps
    and one of `steps`, so start-up and warm-up cancel out."""
    counts = []
    for n in (steps, 2 * steps):
        done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                               __file__, "--only", stage, "--steps", str(n)], capture_output=True, text=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        if done.returncode or not found:
            raise SystemExit(f"callgrind on {stage} failed: {done.stderr[-500:]}")
        counts.append(int(found.group(1)))
    # per_step runs n warm-up-free timed steps plus one warm-up call per run: both runs share the latter.
    return (counts[1] - counts[0]) / steps


def breakdown(cost: dict[str, float], unit: str) -> None:
    rows = {
        "env (gymnasium's step)": cost["env"],
        "validation + answer model (op_step less env)": cost["op_step_off"] - cost["env"],
        "owner-thread hop (from the event loop)": cost["hop"],
        "ledger (op_step on less off)": cost["op_step_on"] - cost["op_step_off"],
        "encode (model_dump_json + HttpResponse)": cost["encode"],
        "Django + Ninja (ASGI call less engine.step, encode)": cost["asgi_off"] - cost["engine_off"] - cost["encode"],
        "whole app, ledger off (ASGI call, no socket)": cost["asgi_off"],
        "whole app, ledger on (ASGI call, no socket)": cost["asgi_on"],
    }
    for label, value in rows.items():
        print(f"  {label:60} {value:10,.1f} {unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--instructions", action="store_true", help="count instructions with callgrind instead")
    parser.add_argument("--only", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="gymsite-stages-")
    os.environ.update(SDL_VIDEODRIVER="dummy", GYMSITE_DATA_DIR=tmp, DATABASE_URL=f"sqlite:///{tmp}/stages.sqlite3")
    if args.only:
        measure(args.only, args.steps)
        return
    print(f"CartPole-v1, {args.steps} steps per stage, ledger on SQLite; "
          f"{'instructions' if args.instructions else 'µs'} per step")
    if args.instructions:
        breakdown({stage: instructions(stage, args.steps) for stage in STAGES}, "instructions")
    else:
        breakdown({stage: measure(stage, args.steps) for stage in STAGES}, "µs")


if __name__ == "__main__":
    main()
