"""Logged client strings are bounded: a huge MCP tool name does not grow the server log with it."""

import logging

import anyio
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from gymsite.logging import TruncateMessage

HUGE = 1_000_000
WAIT = 60


def test_a_huge_unknown_tool_name_writes_a_bounded_log_line(spawn):
    server = spawn(["--env", "CartPole-v1"])
    name = "x" * HUGE

    async def call():
        with anyio.fail_after(WAIT):
            async with Client(streamable_http_client(server.base + "/mcp"), mode="legacy") as client:
                return await client.call_tool(name, {})

    result = anyio.run(call)
    assert result.is_error
    log = server.log()
    assert "more characters]" in log, log[-2000:]
    assert len(log) < 20_000, f"{len(log)} characters of log for one call"


def test_the_filter_cuts_the_formatted_message_and_keeps_short_ones_whole():
    bounded = TruncateMessage(max_chars=10)
    long = logging.LogRecord("t", logging.INFO, __file__, 1, "tool %r failed", ("y" * 100,), None)
    short = logging.LogRecord("t", logging.INFO, __file__, 1, "ok %s", ("z",), None)
    assert bounded.filter(long) and bounded.filter(short)
    assert long.getMessage() == "tool 'yyyy... [104 more characters]"
    assert short.getMessage() == "ok z"
