"""A round's log fills as the CLI works: the presets ask Claude Code and Gemini CLI for
their streaming output (JSONL events), so `tt logs AGENT --follow` shows the tool calls
and text as they happen, not one report at the end. The real CLI, against its stub,
runs a shell tool that waits for the test: the round is still going while the test
reads its log."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import InProcessWorker, TownFixture, wait_until
from tests.stubs._base import Text, ToolCall
from tests.stubs.test_presets import Preset, preset_town
from tinytown.core.models import TaskState

pytestmark = pytest.mark.realcli


@pytest.fixture(params=["claude", "gemini"])
def preset(request: pytest.FixtureRequest, town_factory: Callable[..., TownFixture],
           worker_in_process: Callable[..., InProcessWorker],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Preset]:
    yield from preset_town(request.param, town_factory, worker_in_process, monkeypatch)


def _events(text: str) -> list[dict[str, object]]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except ValueError:
                continue
        # a line not (yet) whole, or the CLI's stderr: not an event
    return found


def test_the_round_log_shows_the_cli_at_work_before_the_round_ends(preset: Preset) -> None:
    go = preset.sandbox.root / "go"
    preset.stub.push(ToolCall(f"while [ ! -e {go} ]; do sleep 0.1; done; echo released",
                              text="Waiting for the signal."),
                     Text("FINAL: released"))
    worker = preset.agent("live")
    task_id = preset.town.town.assign("live", "Wait for the signal")
    log = preset.town.town.settings.logs_dir / "live" / "round-1.log"
    runner = threading.Thread(target=worker.run_round, name="round")
    runner.start()
    try:
        def tool_call_shown() -> bool:
            text = log.read_text() if log.exists() else ""
            return any(e.get("type") == "tool_use" or  # Gemini CLI's, Claude Code's:
                       "tool_use" in json.dumps(e.get("message", "")) for e in _events(text))

        wait_until(tool_call_shown, 60, "the tool call in the round log")
        # the tool is still waiting: the round has not ended, its log shows it at work
        assert runner.is_alive()
        assert preset.town.task_state(task_id) == TaskState.RUNNING
        text = log.read_text()
        assert "Waiting for the signal." in text
        assert "FINAL: released" not in text
    finally:
        go.touch()
        runner.join(90)
    assert not runner.is_alive()
    task = preset.town.town.store.require_task(task_id)
    assert task.state == TaskState.COMPLETED, task.result
    assert task.result == "FINAL: released"
    assert task.usage is not None and task.usage.output_tokens > 0
    session = preset.town.town.resolve("live").session_id
    assert session and session in log.read_text()
