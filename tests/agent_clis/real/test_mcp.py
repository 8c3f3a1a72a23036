"""Agents coordinate through Tinytown's MCP tools: the real agent CLI, against a stub of
its model API, is given `tt mcp` by its round (`[agent] mcp`, on by default) and the
model completes its task by calling the `complete_task` tool, not by the CLI's exit.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.agent_clis.real.clis import BY_NAME, MCP, params
from tests.agent_clis.real.towns import Preset, preset_town
from tests.helpers import InProcessWorker, TownFixture
from tests.stubs._base import Text, ToolCall

pytestmark = pytest.mark.realcli


def _tool(preset: Preset, tool: str) -> str:
    """How the CLI names an MCP server's tool to its model."""
    return BY_NAME[preset.name].mcp_tool.format(tool=tool)


@pytest.mark.parametrize("preset", params(MCP), indirect=True)
def test_the_agent_completes_its_task_through_the_mcp_tool(preset: Preset) -> None:
    preset.stub.push(
        ToolCall("", name=_tool(preset, "complete_task"),
                 args={"result": "done through the tinytown MCP tool"}),
        Text("All done; I reported it with the tool."))
    worker = preset.agent("m")
    state, result, task_id = preset.task(worker, "m", "Do the job, then report it")
    assert state == "completed", result
    assert result == "done through the tinytown MCP tool", preset.conversation()  # the tool's
    events = [e for e in preset.town.town.events(200) if e["kind"] == "task_completed"
              and e.get("task") == task_id]
    assert len(events) == 1
    # the model was offered the town's tools, and the tool's answer came back to it
    offered = json.dumps(preset.stub.main_requests[0].body)
    assert (BY_NAME[preset.name].mcp_offered or _tool(preset, "send_message")) in offered
    assert "completed" in preset.conversation()


def test_mcp_false_gives_the_cli_no_tinytown_server(
        town_factory: Callable[..., TownFixture],
        worker_in_process: Callable[..., InProcessWorker],
        monkeypatch: pytest.MonkeyPatch) -> None:
    for preset in preset_town("claude", town_factory, worker_in_process, monkeypatch):
        config = preset.town.root / "tinytown.toml"
        config.write_text(config.read_text().replace("[agent]\n", "[agent]\nmcp = false\n"))
        preset.town.town.close()
        preset.town.reconnect()
        preset.stub.push(Text("plain answer"))
        worker = preset.agent("n")
        state, result, _ = preset.task(worker, "n", "anything")
        assert state == "completed" and result == "plain answer"
        assert "mcp__tinytown__" not in json.dumps(preset.stub.main_requests[0].body)
