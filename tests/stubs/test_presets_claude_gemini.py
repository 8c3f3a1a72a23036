"""The `claude` and `gemini` presets, through Tinytown, with the real CLIs against stubs
of their model APIs: a task that runs a shell tool, an API error, a session carried to
the next task, a fork, a 200 KiB prompt, and `tt doctor` on the root case.

The agent's worker runs in this process (its rounds are what is tested); the CLI is the
real program, installed by scripts/install-clis, with a HOME of its own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import InProcessWorker, TownFixture, tt
from tests.stubs.anthropic import AnthropicStub, ApiError, Text, ToolCall
from tests.stubs.gemini import GeminiStub
from tests.stubs.realcli import Sandbox, claude_env, find_cli, gemini_env, gemini_settings
from tests.stubs.test_stub_claude_gemini import big_prompt

pytestmark = pytest.mark.realcli


@dataclass
class Preset:
    """One preset's agent in a town, its stub, and the CLI's sandbox (HOME, TMPDIR)."""

    town: TownFixture
    stub: AnthropicStub | GeminiStub
    sandbox: Sandbox
    worker: Callable[..., InProcessWorker]

    def agent(self, name: str, **spawn: object) -> InProcessWorker:
        self.town.town.spawn_agent(name, start=False, **spawn)  # type: ignore[arg-type]
        return self.worker(self.town, name)

    def task(self, worker: InProcessWorker, ref: str, text: str) -> tuple[str, str, str]:
        """Assign, run the round; the task's state, result and id."""
        task_id = self.town.town.assign(ref, text)
        worker.run_round()
        task = self.town.town.store.require_task(task_id)
        return task.state.value, task.result or "", task_id

    def conversation(self, index: int = -1) -> str:
        return self.stub.conversation_text(self.stub.main_requests[index])


def _installed(binary: str) -> str:
    path, why = find_cli(binary)
    if path is None:
        pytest.skip(f"{binary} is not installed: {why} (run scripts/install-clis)")
    return path


@pytest.fixture(params=["claude", "gemini"])
def preset(request: pytest.FixtureRequest, town_factory: Callable[..., TownFixture],
           worker_in_process: Callable[..., InProcessWorker],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Preset]:
    name = request.param
    binary = _installed(name)
    sandbox = Sandbox()
    stub: AnthropicStub | GeminiStub
    if name == "claude":
        stub = AnthropicStub()
        env = claude_env("")
    else:
        stub = GeminiStub()
        gemini_settings(sandbox, maxAttempts=1)
        env = gemini_env("")
    with stub:
        env = {k: v if v else stub.base_url for k, v in env.items()}
        for key, value in sandbox.env(env).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("PATH", f"{Path(binary).parent}{os.pathsep}{os.environ['PATH']}")
        town = town_factory(cli=name)
        try:
            yield Preset(town, stub, sandbox, worker_in_process)
        finally:
            sandbox.cleanup()


def test_a_task_runs_a_shell_tool_and_ends_with_the_agents_answer(preset: Preset) -> None:
    preset.stub.push(ToolCall("printf 'made by the agent' > out.txt"),
                     Text("FINAL-ANSWER: out.txt written"))
    worker = preset.agent("a")
    state, result, _ = preset.task(worker, "a", "Write out.txt (marker-first-task)")
    assert (state, result) == ("completed", "FINAL-ANSWER: out.txt written")
    assert (preset.town.root / "out.txt").read_text() == "made by the agent"
    assert "marker-first-task" in preset.conversation(0)


def test_the_next_task_continues_the_session(preset: Preset) -> None:
    preset.stub.push(Text("first done"), Text("second done"))
    worker = preset.agent("s")
    assert preset.task(worker, "s", "Remember the word marker-pelican")[:2] == \
        ("completed", "first done")
    session = preset.town.town.resolve("s").session_id
    assert session
    assert preset.task(worker, "s", "Which word was it?")[:2] == ("completed", "second done")
    second = preset.conversation()
    assert "marker-pelican" in second and "first done" in second  # the first conversation
    assert preset.town.town.resolve("s").session_id == session


def test_an_api_error_fails_the_task_with_that_error(preset: Preset) -> None:
    preset.stub.push(ApiError(400, "the stub refuses this request", times=None))
    worker = preset.agent("e")
    state, result, _ = preset.task(worker, "e", "anything")
    assert state == "failed"
    assert "the stub refuses this request" in result and "\n" not in result, result


def test_a_fork_starts_from_the_parents_conversation(preset: Preset) -> None:
    preset.stub.push(Text("parent done"), Text("child done"))
    parent = preset.agent("p")
    preset.task(parent, "p", "The secret is marker-walrus")
    child = preset.agent("c", parent="p", fork=True)
    assert preset.task(child, "c", "Go on")[:2] == ("completed", "child done")
    assert "marker-walrus" in preset.conversation()
    assert preset.town.town.resolve("c").session_id != preset.town.town.resolve("p").session_id


def test_a_200_kib_prompt_arrives_whole(preset: Preset) -> None:
    preset.stub.push(Text("ok"))
    worker = preset.agent("b")
    text = big_prompt()
    assert preset.task(worker, "b", text)[:2] == ("completed", "ok")
    assert text in preset.conversation()


def test_doctor_reports_the_cli_and_the_root_case(
    preset: Preset, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = preset.town.town.settings.agent.default_cli
    monkeypatch.delenv("IS_SANDBOX", raising=False)
    report = tt("doctor", "--json", cwd=preset.town.root)
    found = {c["name"]: c for c in json.loads(report.out)["clis"]}[name]
    assert found["installed"] and found["version"] and found["used"]
    assert found["credentials_set"] and "stub" not in json.dumps(found)  # names, not values
    if name == "claude" and os.geteuid() == 0:
        assert "as root" in " ".join(found["problems"]) and report.code == 1
        monkeypatch.setenv("IS_SANDBOX", "1")
        sandboxed = tt("doctor", "--json", cwd=preset.town.root)
        claude = {c["name"]: c for c in json.loads(sandboxed.out)["clis"]}["claude"]
        assert claude["problems"] == [] and claude["ready"]
