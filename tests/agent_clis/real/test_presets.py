"""Every installable preset (claude, codex, gemini, copilot, aider, auggie, opencode,
qwen, cline), through
Tinytown, with the real CLI against a stub of its model API: a task that runs a shell
tool (aider: an edit that creates a file; it runs no shell commands), an API error, a
session carried to the next task, a fork, a 200 KiB prompt, and `tt doctor`.

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
from tests.stubs._base import StubServer
from tests.stubs.anthropic import AnthropicStub, ApiError, Text, ToolCall
from tests.stubs.augment import AugmentStub
from tests.stubs.gemini import GeminiStub
from tests.stubs.openai import OpenAIStub, aider_new_file
from tests.stubs.realcli import (
    Sandbox,
    claude_env,
    cline_providers,
    gemini_env,
    gemini_settings,
    installed,
    opencode_config,
    opencode_env,
    qwen_env,
    qwen_settings,
)
from tests.stubs.test_stub_claude_gemini import big_prompt

pytestmark = pytest.mark.realcli


@dataclass
class Preset:
    """One preset's agent in a town, its stub, and the CLI's sandbox (HOME, TMPDIR)."""

    name: str
    town: TownFixture
    stub: StubServer
    sandbox: Sandbox
    worker: Callable[..., InProcessWorker]

    def make_file(self, answer: str) -> None:
        """Script: the CLI's tool writes out.txt, then the model answers `answer`."""
        if self.name == "aider":
            self.stub.push(Text(aider_new_file("out.txt", "made by the agent", before=answer)))
        else:
            self.stub.push(ToolCall("printf 'made by the agent' > out.txt"), Text(answer))

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
        return str(self.stub.conversation_text(  # type: ignore[attr-defined]
            self.stub.main_requests[index]))


Environment = Callable[[StubServer], dict[str, str]]


def _setup(name: str, sandbox: Sandbox) -> tuple[StubServer, Environment]:
    """The stub a preset's CLI talks to, and the environment that points it there (the
    CLI's own variables and config files, as a user would set them)."""
    if name == "claude":
        return AnthropicStub(), lambda stub: claude_env(stub.base_url)
    if name == "gemini":
        gemini_settings(sandbox, maxAttempts=1)
        return GeminiStub(), lambda stub: gemini_env(stub.base_url)
    if name == "auggie":
        return AugmentStub(), lambda stub: {
            "AUGMENT_SESSION_AUTH": stub.session_auth()}  # type: ignore[attr-defined]

    def openai_env(stub: StubServer) -> dict[str, str]:
        url = stub.api_url  # type: ignore[attr-defined]
        if name == "codex":
            config = sandbox.home / ".codex" / "config.toml"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(f'openai_base_url = "{url}"\n')
            return {"OPENAI_API_KEY": "sk-stub-key"}
        if name == "opencode":
            opencode_config(sandbox, url)
            return opencode_env()
        if name == "qwen":
            qwen_settings(sandbox)
            return qwen_env(url)
        if name == "cline":
            cline_providers(sandbox, url)
            return {}
        if name == "copilot":  # its own prompt budget for gpt-4o is 64000 tokens
            return {"COPILOT_PROVIDER_BASE_URL": url, "COPILOT_PROVIDER_API_KEY": "sk-stub",
                    "COPILOT_OFFLINE": "true", "COPILOT_MODEL": "gpt-4o",
                    "COPILOT_PROVIDER_MAX_PROMPT_TOKENS": "128000"}
        return {"OPENAI_API_BASE": url, "OPENAI_API_KEY": "sk-stub"}  # aider

    return OpenAIStub(), openai_env


def preset_town(name: str, town_factory: Callable[..., TownFixture],
                worker_in_process: Callable[..., InProcessWorker],
                monkeypatch: pytest.MonkeyPatch, extra: str = "") -> Iterator[Preset]:
    """A town whose default CLI is preset `name`, its CLI pointed at a stub."""
    binary = installed(name)
    sandbox = Sandbox()
    stub, environment = _setup(name, sandbox)
    with stub:
        env = environment(stub)
        for key, value in sandbox.env(env).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("PATH", f"{Path(binary).parent}{os.pathsep}{os.environ['PATH']}")
        town = town_factory(cli=name, extra=extra)
        try:
            yield Preset(name, town, stub, sandbox, worker_in_process)
        finally:
            sandbox.cleanup()


@pytest.fixture(params=["claude", "codex", "gemini", "copilot", "aider", "auggie", "opencode",
                        "qwen", "cline"])
def preset(request: pytest.FixtureRequest, town_factory: Callable[..., TownFixture],
           worker_in_process: Callable[..., InProcessWorker],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Preset]:
    yield from preset_town(request.param, town_factory, worker_in_process, monkeypatch)


def test_a_task_runs_a_shell_tool_and_ends_with_the_agents_answer(preset: Preset) -> None:
    preset.make_file("FINAL-ANSWER: out.txt written")
    worker = preset.agent("a")
    state, result, _ = preset.task(worker, "a", "Write out.txt (marker-first-task)")
    assert state == "completed", result
    if preset.name == "aider":  # plain text: the answer among aider's own lines
        assert "FINAL-ANSWER: out.txt written" in result
    else:
        assert result == "FINAL-ANSWER: out.txt written"
    assert (preset.town.root / "out.txt").read_text().strip() == "made by the agent"
    assert "marker-first-task" in preset.conversation(0)


# CLIs that cannot continue a session headless, and why (the README's preset table too)
NO_SESSIONS = {
    "cline": "Cline CLI 3.0: --id <session> always opens its terminal UI (needs a TTY; "
             "--json then refuses to run), and its events do not name the session",
}


def test_the_next_task_continues_the_session(preset: Preset) -> None:
    if preset.name in NO_SESSIONS:
        pytest.skip(NO_SESSIONS[preset.name])
    preset.stub.push(Text("first done"), Text("second done"))
    worker = preset.agent("s")
    state, result, _ = preset.task(worker, "s", "Remember the word marker-pelican")
    assert state == "completed" and "first done" in result, result
    session = preset.town.town.resolve("s").session_id
    assert session
    state, result, _ = preset.task(worker, "s", "Which word was it?")
    assert state == "completed" and "second done" in result, result
    second = preset.conversation()
    assert "marker-pelican" in second and "first done" in second  # the first conversation
    assert preset.town.town.resolve("s").session_id == session


def test_an_api_error_fails_the_task_with_that_error(preset: Preset) -> None:
    preset.stub.push(ApiError(400, "the stub refuses this request", times=None))
    worker = preset.agent("e")
    state, result, _ = preset.task(worker, "e", "anything")
    assert state == "failed"
    # auggie names the status only ("❌ Invalid request: HTTP error: 400")
    said = "HTTP error: 400" if preset.name == "auggie" else "the stub refuses this request"
    assert said in result and "\n" not in result, result


def test_a_fork_starts_from_the_parents_conversation(preset: Preset) -> None:
    preset.stub.push(Text("parent done"), Text("child done"))
    parent = preset.agent("p")
    preset.task(parent, "p", "The secret is marker-walrus")
    child = preset.agent("c", parent="p", fork=True)
    state, result, _ = preset.task(child, "c", "Go on")
    assert state == "completed" and "child done" in result, result
    assert "marker-walrus" in preset.conversation()
    child_session = preset.town.town.resolve("c").session_id
    if preset.name in NO_SESSIONS:  # the parent's transcript in the prompt; no session kept
        assert child_session is None and preset.town.town.resolve("p").session_id is None
    else:
        assert child_session != preset.town.town.resolve("p").session_id


def test_a_200_kib_prompt_arrives_whole(preset: Preset) -> None:
    preset.stub.push(Text("ok"))
    worker = preset.agent("b")
    text = big_prompt()
    state, result, _ = preset.task(worker, "b", text)
    assert state == "completed", result
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
