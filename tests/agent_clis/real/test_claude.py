"""The real Claude Code alone (not through Tinytown) against the Anthropic stub: what it
prints (`--output-format json`: the report Tinytown reads), its API errors, the root
refusal, and its sessions (resume, fork, per working folder). Run from a plain command
line with a fresh HOME and configuration only through environment variables, as a user
would; skipped with the reason when it is not installed (scripts/install-clis).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest

from tests.agent_clis.real.clis import BY_NAME
from tests.stubs._base import ApiError, Text, ToolCall
from tests.stubs.anthropic import AnthropicStub
from tests.stubs.realcli import Run, Sandbox, claude_env, installed

pytestmark = pytest.mark.realcli
CLAUDE_ARGS = list(BY_NAME["claude"].alone)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ROOT_REFUSAL = (
    "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
)

@pytest.fixture
def claude() -> str:
    return installed("claude")


@pytest.fixture
def anthropic_stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


def run_claude(claude: str, sandbox: Sandbox, stub: AnthropicStub, prompt: str,
               *args: str, **env: str) -> Run:
    return sandbox.run([claude, *CLAUDE_ARGS, *args], prompt, claude_env(stub.base_url, **env))



def _conversation(stub: AnthropicStub, index: int = -1) -> str:
    return stub.conversation_text(stub.main_requests[index])



@pytest.mark.realcli
def test_claude_runs_the_bash_tool_and_reports_the_final_text(
    claude: str, sandbox: Sandbox, anthropic_stub: AnthropicStub
) -> None:
    stub = anthropic_stub
    stub.cache_creation_input_tokens = 11
    stub.cache_read_input_tokens = 5
    stub.push(ToolCall("printf 'made by claude' > out.txt"), Text("FINAL-ANSWER: file written"))
    run = run_claude(claude, sandbox, stub, "Please write out.txt (task-marker-7c1)")
    assert run.returncode == 0, run.describe()
    out = run.json()
    assert (sandbox.work / "out.txt").read_text() == "made by claude"
    assert out["type"] == "result" and out["subtype"] == "success"
    assert out["is_error"] is False and out["api_error_status"] is None
    assert out["result"] == "FINAL-ANSWER: file written"
    assert UUID.match(out["session_id"]), out
    assert out["num_turns"] == 2
    first, second = stub.main_requests
    assert "task-marker-7c1" in stub.conversation_text(first)
    assert "Bash" in [t["name"] for t in first.body["tools"]]
    results = [b for m in second.body["messages"] if isinstance(m["content"], list)
               for b in m["content"] if b.get("type") == "tool_result"]
    assert len(results) == 1 and not results[0].get("is_error")
    assert first.headers["x-claude-code-session-id"] == out["session_id"]
    assert first.headers["x-api-key"] == "<redacted>"
    # usage: the exact sum over the task's model requests, and a cost from its price table
    usage = out["usage"]
    for key in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                "cache_read_input_tokens"):
        assert usage[key] == sum(r.usage[key] for r in stub.main_requests if r.usage), key
    assert out["total_cost_usd"] > 0
    assert stub.pending() == 0



@pytest.mark.realcli
@pytest.mark.parametrize(
    ("status", "retries", "message", "shown"),
    [
        (400, "0", "messages.0: bad request from the stub", "bad request from the stub"),
        (429, "1", "Number of request tokens has exceeded your rate limit",
         "API Error: Request rejected (429)"),
        (529, "0", "Overloaded", "API Error: 529 Overloaded"),
    ],
)
def test_claude_api_errors_surface_in_the_json(
    claude: str, sandbox: Sandbox, anthropic_stub: AnthropicStub,
    status: int, retries: str, message: str, shown: str,
) -> None:
    stub = anthropic_stub
    stub.push(ApiError(status, message, headers={"retry-after": "0"}, times=None))
    run = run_claude(claude, sandbox, stub, "hello", CLAUDE_CODE_MAX_RETRIES=retries)
    assert run.returncode == 1, run.describe()
    out = run.json()
    assert out["is_error"] is True and out["api_error_status"] == status
    assert shown in out["result"], out["result"]
    assert UUID.match(out["session_id"])
    # the first try and CLAUDE_CODE_MAX_RETRIES more (400 is never retried)
    assert len(stub.main_requests) == (1 if status == 400 else 1 + int(retries))



@pytest.mark.realcli
def test_claude_as_root_needs_is_sandbox(
    claude: str, sandbox: Sandbox, anthropic_stub: AnthropicStub
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the refusal is for root only")
    env = claude_env(anthropic_stub.base_url)
    del env["IS_SANDBOX"]
    run = sandbox.run([claude, *CLAUDE_ARGS], "hello", env)
    assert run.returncode == 1
    assert run.stdout == ""
    assert run.stderr.strip() == ROOT_REFUSAL
    assert anthropic_stub.requests == []



@pytest.mark.realcli
def test_claude_resume_carries_the_conversation_and_fork_starts_from_it(
    claude: str, sandbox: Sandbox, anthropic_stub: AnthropicStub
) -> None:
    stub = anthropic_stub
    stub.push(ToolCall("printf one > one.txt"), Text("Task one done: CODEWORD-ALPHA"))
    first = run_claude(claude, sandbox, stub, "task one prompt")
    assert first.returncode == 0, first.describe()
    parent = first.json()["session_id"]

    stub.push(Text("Task two done"))
    second = run_claude(claude, sandbox, stub, "task two prompt", "--resume", parent)
    assert second.returncode == 0, second.describe()
    assert second.json()["session_id"] == parent  # resuming keeps the session id
    seen = _conversation(stub)
    assert "task one prompt" in seen and "CODEWORD-ALPHA" in seen and "task two prompt" in seen

    stub.push(Text("Fork done"))
    fork = run_claude(claude, sandbox, stub, "fork prompt", "--resume", parent, "--fork-session")
    assert fork.returncode == 0, fork.describe()
    forked = fork.json()["session_id"]
    assert UUID.match(forked) and forked != parent
    seen = _conversation(stub)
    assert "CODEWORD-ALPHA" in seen and "task two prompt" in seen and "fork prompt" in seen
    assert stub.main_requests[-1].headers["x-claude-code-session-id"] == forked

    stub.push(Text("Parent again"))  # the fork left the parent as it was
    again = run_claude(claude, sandbox, stub, "parent again", "--resume", parent)
    assert again.returncode == 0 and again.json()["session_id"] == parent
    seen = _conversation(stub)
    assert "task two prompt" in seen and "fork prompt" not in seen

    unknown = str(uuid.uuid4())
    missing = run_claude(claude, sandbox, stub, "x", "--resume", unknown)
    assert missing.returncode == 1 and missing.stdout == ""
    assert f"No conversation found with session ID: {unknown}" in missing.stderr

    # sessions belong to the working directory: another one does not find it
    elsewhere = sandbox.root / "elsewhere"
    elsewhere.mkdir()
    moved = sandbox.run([claude, *CLAUDE_ARGS, "--resume", parent], "x",
                        claude_env(stub.base_url), cwd=elsewhere)
    assert moved.returncode == 1
    assert f"No conversation found with session ID: {parent}" in moved.stderr

