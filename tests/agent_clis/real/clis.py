"""The real-CLI tier's one table: per agent CLI, the stub of its model API it talks to, how
it is pointed at that stub (its own environment variables and config files under a HOME of
the test's own, as a user would set them), how it is run alone (the tests of the CLI
itself), and which behaviours it cannot face here, and why.

Every behaviour module (test_tool_and_commit.py, test_api_error.py, ...) is parametrized
over this table with `params(BEHAVIOUR)`: a CLI that lacks the behaviour is still listed,
skipped with the reason. What only one CLI does is in the module named for it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from _pytest.mark.structures import ParameterSet

from tests.stubs._base import StubServer
from tests.stubs.anthropic import AnthropicStub
from tests.stubs.augment import AugmentStub
from tests.stubs.gemini import GeminiStub
from tests.stubs.openai import OpenAIStub
from tests.stubs.realcli import (
    Run,
    Sandbox,
    claude_env,
    cline_providers,
    gemini_env,
    gemini_settings,
    opencode_config,
    opencode_env,
    qwen_env,
    qwen_settings,
)

# The behaviours every CLI faces (through Tinytown unless said otherwise).
TOOL = "a shell tool writes a file, committed on the agent's branch"
API_ERROR = "an API error fails the task with its reason"
SESSION = "the next task continues the session"
FORK = "a fork starts from the parent's conversation"
BIG_PROMPT = "a 200 KiB prompt arrives whole"
LIMIT = "a usage limit pauses the account until it resets"
USAGE = "the tokens (and cost) of each task are counted"
BUDGET = "a budget holds the agent before the task it cannot afford"
LIVE_LOGS = "the round log shows the CLI at work before the round ends"
MCP = "the agent completes its task through Tinytown's MCP tool"
DOCTOR = "tt doctor reports the CLI"
KEEPER = "a shell tool does not outlive its worker's SIGKILL"
SETSID = "the CLI (run alone) starts its shell tool in a session of its own"
ALONE_BIG_PROMPT = "the CLI (run alone) gets a 200 KiB prompt whole"

NO_SHELL = "aider runs no shell commands headless (--yes-always does not approve them)"
NO_SESSIONS = ("Cline CLI 3.0: --id <session> always opens its terminal UI (needs a TTY; "
               "--json then refuses to run), and its events do not name the session "
               "(tests/stubs/new-clis.md)")
BATCH_OUTPUT = "prints its report only when it ends (no streaming output to show)"
KEEPER_UNSEEN = ("four agents spawned at once (tt spawn) did not all start their shell "
                 "tool within 120 s here (2026-12); not investigated yet")
# A 429 whose retry-after is short: opencode (5 retries) and Cline give up within seconds
# (without one they back off past the round's 60 s time limit; tests/stubs/new-clis.md)
SOON = {"retry-after": "0.01"}


@dataclass(frozen=True)
class RealCli:
    """One agent CLI of the tier. `point` writes its config files into the sandbox's HOME
    and returns the environment that sends it to `stub`; `alone` is its argv (after the
    binary) when run alone, the prompt on stdin, or in a file after `prompt_file`."""

    name: str
    binary: str
    stub: Callable[[], StubServer] | None
    point: Callable[[Sandbox, Any], dict[str, str]]
    alone: tuple[str, ...] = ()
    prompt_file: str = ""
    lacks: Mapping[str, str] = field(default_factory=dict)  # behaviour -> why not here
    mcp_tool: str = ""  # how it names an MCP server's tool to its model ({tool})
    mcp_offered: str = ""  # what its first request says of them ("": the tools' names)
    # the headers of a usage limit's 429 with which it gives up soon, as it does at a
    # real one (rather than retrying past the round's time limit)
    limit_headers: Mapping[str, str] = field(default_factory=dict)
    limit_round: float = 60  # the round's time limit there: it retries that long first

    def alone_argv(self, binary: str, sandbox: Sandbox, prompt: str, *args: str
                   ) -> tuple[list[str], str | None]:
        """The argv that runs the CLI alone on `prompt`, and its stdin."""
        if not self.prompt_file:
            return [binary, *self.alone, *args], prompt
        path = sandbox.root / f"prompt-{uuid.uuid4().hex[:8]}.txt"
        path.write_text(prompt)
        return [binary, *self.alone, *args, self.prompt_file, str(path)], None

    def run_alone(self, binary: str, sandbox: Sandbox, stub: Any, prompt: str,
                  *args: str, **env: str) -> Run:
        """The CLI alone (not through Tinytown) on `prompt`, pointed at `stub`."""
        argv, stdin = self.alone_argv(binary, sandbox, prompt, *args)
        return sandbox.run(argv, stdin, {**self.point(sandbox, stub), **env})


def _codex(sandbox: Sandbox, stub: OpenAIStub) -> dict[str, str]:
    config = sandbox.home / ".codex" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'openai_base_url = "{stub.api_url}"\n')
    return {"OPENAI_API_KEY": "sk-stub-key"}


def _gemini(sandbox: Sandbox, stub: GeminiStub) -> dict[str, str]:
    gemini_settings(sandbox, maxAttempts=1)  # else 429/5xx are retried 10 times, 5 s+ apart
    return gemini_env(stub.base_url)


def _copilot(sandbox: Sandbox, stub: OpenAIStub) -> dict[str, str]:
    # its own prompt budget for gpt-4o is 64000 tokens: a 200 KiB prompt needs more
    return {"COPILOT_PROVIDER_BASE_URL": stub.api_url, "COPILOT_PROVIDER_API_KEY": "sk-stub",
            "COPILOT_OFFLINE": "true", "COPILOT_MODEL": "gpt-4o",
            "COPILOT_PROVIDER_MAX_PROMPT_TOKENS": "128000"}


def _aider(sandbox: Sandbox, stub: OpenAIStub) -> dict[str, str]:
    return {"OPENAI_API_BASE": stub.api_url, "OPENAI_API_KEY": "sk-stub",
            "AIDER_CHECK_UPDATE": "false", "AIDER_ANALYTICS": "false"}


def _opencode(sandbox: Sandbox, stub: OpenAIStub) -> dict[str, str]:
    opencode_config(sandbox, stub.api_url)
    return opencode_env()


def _qwen(sandbox: Sandbox, stub: OpenAIStub) -> dict[str, str]:
    qwen_settings(sandbox)
    return qwen_env(stub.api_url)


def _cline(sandbox: Sandbox, stub: OpenAIStub) -> dict[str, str]:
    cline_providers(sandbox, stub.api_url)
    return {}


CURSOR_WHY = ("cursor-agent is on no package registry (curl installer only) and its model "
              "API is Cursor's own, with no stub here: not tested")

CLIS: tuple[RealCli, ...] = (
    RealCli("claude", "claude", AnthropicStub, lambda box, stub: claude_env(stub.base_url),
            ("--print", "--dangerously-skip-permissions", "--output-format", "json"),
            mcp_tool="mcp__tinytown__{tool}"),
    RealCli("codex", "codex", OpenAIStub, _codex,
            ("exec", "--json", "--dangerously-bypass-approvals-and-sandbox"),
            # its MCP tools are deferred: called from its code mode's `tools`
            mcp_tool="mcp__tinytown__{tool}", mcp_offered="mcp__tinytown"),
    RealCli("gemini", "gemini", GeminiStub, _gemini, ("--skip-trust", "--yolo", "-o", "json"),
            mcp_tool="mcp_tinytown_{tool}"),
    RealCli("copilot", "copilot", OpenAIStub, _copilot, ("--yolo",), lacks={
        MCP: "Tinytown gives Copilot CLI no MCP server (its module has no MCP mode)"},
            # it retries a 429 for ~30 s, but gives up at once on a long retry-after
            limit_headers={"retry-after": "3600"}),
    RealCli("aider", "aider", OpenAIStub, _aider, ("--yes-always", "--no-auto-commits"),
            "--message-file", lacks={
                SETSID: NO_SHELL, KEEPER: NO_SHELL, LIVE_LOGS: NO_SHELL,
                MCP: "aider has no MCP client"},
            # it retries a 429 ~70 s (0.125 s doubling to 32 s, whatever retry-after
            # says), then prints the error and exits 0
            limit_round=180),
    RealCli("auggie", "auggie", AugmentStub,
            lambda box, stub: {"AUGMENT_SESSION_AUTH": stub.session_auth()},
            ("--print",), "--instruction-file", lacks={
                USAGE: "auggie's JSON report has no token counts",
                BUDGET: "auggie's JSON report has no token counts or cost",
                LIVE_LOGS: f"auggie --output-format json {BATCH_OUTPUT}",
                MCP: "Tinytown gives auggie no MCP server (its module has no MCP mode)",
                LIMIT: "auggie retries a 429 until its --retry-timeout (not checked)"}),
    RealCli("opencode", "opencode", OpenAIStub, _opencode, ("run", "--auto", "--format", "json"),
            lacks={LIVE_LOGS: "opencode run --format json prints a tool call only when it "
                              "has finished (its tool_use event carries the output)",
                   KEEPER: f"opencode: {KEEPER_UNSEEN}"},
            mcp_tool="tinytown_{tool}", limit_headers=SOON),
    RealCli("qwen", "qwen", OpenAIStub, _qwen, ("--yolo", "--output-format", "stream-json"),
            lacks={LIMIT: "Qwen Code 0.15.10 went on retrying a 429 past a 240 s round (its "
                          "backoff, 1.5 s doubling to 30 s, ignores retry-after; its OpenAI "
                          "client retries each try 3 more times): the round timed out",
                   KEEPER: f"Qwen Code: {KEEPER_UNSEEN}"},
            mcp_tool="mcp__tinytown__{tool}"),
    RealCli("cline", "cline", OpenAIStub, _cline, ("--auto-approve", "true", "--json", " "),
            lacks={SESSION: NO_SESSIONS}, mcp_tool="tinytown__{tool}", limit_headers=SOON),
    RealCli("cursor", "cursor-agent", None, lambda box, stub: {}, lacks={
        b: CURSOR_WHY for b in (TOOL, API_ERROR, SESSION, FORK, BIG_PROMPT, LIMIT, USAGE,
                                BUDGET, LIVE_LOGS, MCP, DOCTOR, KEEPER, SETSID,
                                ALONE_BIG_PROMPT)}),
)
BY_NAME = {c.name: c for c in CLIS}


def params(behaviour: str) -> list[ParameterSet]:
    """One parameter per CLI of the table (its name); skipped, with the reason, where
    the CLI lacks `behaviour`."""
    found = []
    for cli in CLIS:
        why = cli.lacks.get(behaviour)
        marks = [pytest.mark.skip(reason=f"{cli.name}: {why}")] if why is not None else []
        found.append(pytest.param(cli.name, id=cli.name, marks=marks))
    return found


def big_prompt() -> str:
    """Over 200 KiB of distinct lines of words between two markers (plain words: Copilot
    CLI counts tokens itself and refuses a prompt over its model's budget)."""
    words = "the agent reads a task and writes code with tests for the town".split()
    lines = [f"line {i:06d} " + " ".join(words[(i + j) % len(words)] for j in range(12))
             for i in range(3200)]
    text = "BIG-PROMPT-BEGIN\n" + "\n".join(lines) + "\nBIG-PROMPT-END: reply with ok"
    assert len(text.encode()) > 200 * 1024
    return text


def stub_of(cli: RealCli) -> Iterator[StubServer]:
    """The CLI's stub, started; on leaving, it must have met no error."""
    assert cli.stub is not None
    with cli.stub() as stub:
        yield stub
        assert not stub.errors, stub.errors
