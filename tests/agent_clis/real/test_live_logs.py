"""A round's log fills as the CLI works: the presets ask each CLI that can for its
streaming output (JSONL events), so `tt logs AGENT --follow` shows the tool calls and
text as they happen, not one report at the end. The real CLI, against its stub, runs a
shell tool that waits for the test: the round is still going while the test reads its
log."""

from __future__ import annotations

import threading

import pytest

from tests.agent_clis.real.clis import LIVE_LOGS, params
from tests.agent_clis.real.towns import Preset
from tests.helpers import wait_until
from tests.stubs._base import Text, ToolCall
from tinytown.core.models import TaskState

pytestmark = pytest.mark.realcli


@pytest.mark.parametrize("preset", params(LIVE_LOGS), indirect=True)
def test_the_round_log_shows_the_cli_at_work_before_the_round_ends(preset: Preset) -> None:
    go = preset.sandbox.root / "go-signal"
    preset.stub.push(ToolCall(f"while [ ! -e {go} ]; do sleep 0.1; done; echo released",
                              text="Waiting for the signal."),
                     Text("FINAL: released"))
    worker = preset.agent("live")
    task_id = preset.town.town.assign("live", "Wait for the signal")
    log = preset.town.town.settings.logs_dir / "live" / "round-1.log"
    runner = threading.Thread(target=worker.run_round, name="round")
    runner.start()
    try:
        # the tool call, with its command, is in the log while the tool still waits
        wait_until(lambda: log.exists() and str(go) in log.read_text(), 90,
                   "the tool call in the round log")
        assert runner.is_alive()
        assert preset.town.task_state(task_id) == TaskState.RUNNING
        text = log.read_text()
        if preset.name in ("claude", "gemini"):  # what the model said before its call
            assert "Waiting for the signal." in text
        assert "FINAL: released" not in text
    finally:
        go.touch()
        runner.join(120)
    assert not runner.is_alive()
    task = preset.town.town.store.require_task(task_id)
    assert task.state == TaskState.COMPLETED, task.result
    assert task.result == "FINAL: released"
    assert task.usage is not None and task.usage.output_tokens > 0
    session = preset.town.town.resolve("live").session_id
    if session:  # Cline's events do not name its session
        assert session in log.read_text()
