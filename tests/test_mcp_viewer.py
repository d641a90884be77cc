"""The episode viewer as an MCP App: a ui:// resource the frame and run tools link to, in memory."""

import pytest

from gymenv.mcp_server.viewer import VIEWER_URI
from tests.test_mcp_tools import MODES, connect


@pytest.mark.parametrize("mode", MODES)
def test_render_and_the_run_tools_link_to_the_viewer_resource(door, mode):
    async def body(client):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        (page,) = (await client.read_resource(VIEWER_URI)).contents
        return tools, page

    tools, page = connect(door(env_id="CartPole-v1", run_manager=True), body, mode=mode)
    linked = {name for name, tool in tools.items() if (tool.meta or {}).get("ui", {}).get("resourceUri") == VIEWER_URI}
    assert linked == {"render_env", "get_run_status", "get_run_statistics", "reset_run"}
    assert page.mime_type == "text/html;profile=mcp-app"
    assert "ui/initialize" in page.text and "const GymChart" in page.text  # self-contained: the chart inlined
    assert "<script src=" not in page.text and "<link" not in page.text


def test_a_host_without_mcp_apps_still_gets_the_frame_as_image_content(door):
    srv = door(env_id="CartPole-v1")
    srv.post("/reset", {"seed": 0})

    async def body(client):
        return await client.call_tool("render_env", {})

    result = connect(srv, body)
    assert not result.is_error and [c.type for c in result.content] == ["image", "text"]
