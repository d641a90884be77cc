"""An `mcp` 1.x (handshake-era) client driving `step_env` on several MCP servers in alternating
blocks; run by bench/versus.py with the python of the virtualenv it made (mcp<2, gym-mcp-server).
It imports nothing of gymsite: it is what a LangChain adapter or a desktop host runs.

    python mcp1_client.py CALLS BLOCK LABEL=URL [LABEL=URL ...]   # prints {label: [seconds, ...]} as JSON
"""

import contextlib
import json
import sys
import time

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamablehttp_client


def answer(result) -> dict:
    if result.isError:
        raise SystemExit(f"tool failed: {result.content}")
    body = result.structuredContent
    # gym-mcp-server's tools return a JSON string, which the SDK wraps as {"result": "..."}.
    return json.loads(body["result"]) if set(body) == {"result"} else body


async def main(calls: int, block: int, targets: dict[str, str]) -> None:
    async with contextlib.AsyncExitStack() as stack:
        sessions = {}
        for label, url in targets.items():
            read, write, _ = await stack.enter_async_context(streamablehttp_client(url))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            await session.list_tools()  # the output schemas the session validates against
            sessions[label] = session
        latencies: dict[str, list[float]] = {label: [] for label in targets}
        observations = {label: answer(await s.call_tool("reset_env", {"seed": 0}))["observation"]
                        for label, s in sessions.items()}

        async def steps(label: str, n: int, timed: list[float] | None) -> None:
            session = sessions[label]
            for _ in range(n):
                obs = observations[label]
                action = 1 if obs[2] + 0.5 * obs[3] > 0 else 0  # lean with the pole: long episodes
                t = time.perf_counter()
                result = await session.call_tool("step_env", {"action": action})
                if timed is not None:
                    timed.append(time.perf_counter() - t)
                body = answer(result)
                observations[label] = body["observation"]
                if body["done"]:
                    observations[label] = answer(await session.call_tool("reset_env", {}))["observation"]

        for label in targets:  # warm-up
            await steps(label, max(50, calls // 10), None)
        order = list(targets)
        while len(latencies[order[0]]) < calls:
            n = min(block, calls - len(latencies[order[0]]))
            for label in order:
                await steps(label, n, latencies[label])
            order.append(order.pop(0))  # rotate: no target always runs first
    print(json.dumps(latencies))


if __name__ == "__main__":
    count, size, *pairs = sys.argv[1:]
    anyio.run(main, int(count), int(size), dict(pair.split("=", 1) for pair in pairs))
