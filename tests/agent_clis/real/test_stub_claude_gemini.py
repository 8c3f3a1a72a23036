"""The real Claude Code and Gemini CLI against stubs of their model APIs on 127.0.0.1.

Each CLI runs directly (not through Tinytown) from a plain command line, with a fresh
HOME and configuration only through environment variables and the CLI's own config
files under HOME, as a user would. A CLI that is not installed is skipped with the
reason (install them with scripts/install-clis). The stub tests at the top need no CLI.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.stubs._base import ApiError, Text, ToolCall
from tests.stubs.anthropic import AnthropicStub
from tests.stubs.gemini import GeminiStub, declared_tools
from tests.stubs.realcli import (
    CLAUDE_ARGS,
    GEMINI_ARGS,
    Run,
    Sandbox,
    claude_env,
    gemini_env,
    gemini_settings,
    installed,
)

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ROOT_REFUSAL = (
    "--dangerously-skip-permissions cannot be used with root/sudo privileges for security reasons"
)


def big_prompt() -> str:
    """Over 200 KiB of distinct lines between two markers."""
    lines = [f"line {i:06d} {uuid.UUID(int=i).hex} " + "x" * 40 for i in range(3000)]
    text = "BIG-PROMPT-BEGIN\n" + "\n".join(lines) + "\nBIG-PROMPT-END: reply with ok"
    assert len(text.encode()) > 200 * 1024
    return text


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def claude() -> str:
    return installed("claude")


@pytest.fixture
def gemini() -> str:
    return installed("gemini")


@pytest.fixture
def anthropic_stub() -> Iterator[AnthropicStub]:
    with AnthropicStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


@pytest.fixture
def gemini_stub() -> Iterator[GeminiStub]:
    with GeminiStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


# -- the stubs alone -----------------------------------------------------------------------
def _post(url: str, body: Any) -> tuple[int, bytes]:
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"content-type": "application/json", "x-api-key": "secret"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _sse_events(raw: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    events = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        name, data = None, None
        for line in block.splitlines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if data is not None:
            events.append((name, data))
    return events


def test_anthropic_stub_scripts_main_requests_only(anthropic_stub: AnthropicStub) -> None:
    stub = anthropic_stub
    stub.cache_read_input_tokens = 7
    stub.push(ToolCall("echo hi > f"), ApiError(429, "slow down", times=2), Text("the end"))
    url = stub.base_url + "/v1/messages"
    main = {"model": "m", "max_tokens": 10, "stream": True,
            "tools": [{"name": "Bash", "input_schema": {}}],
            "messages": [{"role": "user", "content": "do it"}]}
    side = {"model": "m", "max_tokens": 10, "tools": [],
            "messages": [{"role": "user", "content": "title?"}],
            "output_config": {"format": {"type": "json_schema", "schema": {
                "type": "object", "properties": {"title": {"type": "string"}},
                "required": ["title"]}}}}
    status, raw = _post(url, side)  # answered without touching the script
    assert status == 200 and json.loads(json.loads(raw)["content"][0]["text"]) == {
        "title": "Stub title"}
    status, raw = _post(url, main)
    events = _sse_events(raw)
    assert [e for e, _ in events] == [
        "message_start", "ping", "content_block_start", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop"]
    assert events[2][1]["content_block"]["name"] == "Bash"
    assert json.loads(events[3][1]["delta"]["partial_json"])["command"] == "echo hi > f"
    assert events[5][1]["delta"]["stop_reason"] == "tool_use"
    assert events[0][1]["message"]["usage"]["cache_read_input_tokens"] == 7
    for _ in range(2):  # one error reply answers two requests (a retry)
        status, raw = _post(url, main)
        assert status == 429
        assert json.loads(raw) == {"type": "error", "error": {
            "type": "rate_limit_error", "message": "slow down"}}
    status, raw = _post(url, {**main, "stream": False})
    assert status == 200 and json.loads(raw)["content"] == [{"type": "text", "text": "the end"}]
    status, raw = _post(url, main)  # nothing scripted is left: a harmless text
    assert status == 200 and "no scripted reply" in raw.decode()
    status, raw = _post(url + "/count_tokens", {"messages": main["messages"]})
    assert status == 200 and json.loads(raw)["input_tokens"] > 0
    assert [r.kind for r in stub.requests] == ["side", "main", "main", "main", "main", "main",
                                              "other"]
    assert stub.requests[0].headers["x-api-key"] == "<redacted>"
    assert stub.pending() == 0


def test_gemini_stub_scripts_main_requests_only(gemini_stub: GeminiStub) -> None:
    stub = gemini_stub
    stub.push(ToolCall("echo hi > f"), ApiError(429, "Resource exhausted"), Text("the end"))
    base = stub.base_url + "/v1beta/models/gemini-x:"
    main = {"contents": [{"role": "user", "parts": [{"text": "do it"}]}],
            "tools": [{"functionDeclarations": [{"name": "run_shell_command"}]}]}
    router = {"contents": [{"role": "user", "parts": [{"text": "route"}]}],
              "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {
                  "type": "OBJECT", "properties": {
                      "complexity_score": {"type": "INTEGER", "minimum": 1},
                      "next_speaker": {"type": "STRING", "enum": ["model", "user"]}}}}}
    status, raw = _post(base + "generateContent?key=secret", router)
    answer = json.loads(json.loads(raw)["candidates"][0]["content"]["parts"][0]["text"])
    assert status == 200 and answer == {"complexity_score": 1, "next_speaker": "user"}
    status, raw = _post(base + "streamGenerateContent?alt=sse", main)
    chunks = [data for _, data in _sse_events(raw)]
    call = chunks[-1]["candidates"][0]["content"]["parts"][0]["functionCall"]
    assert call == {"name": "run_shell_command",
                    "args": {"command": "echo hi > f", "description": "Run the scripted command"}}
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] > 0
    status, raw = _post(base + "streamGenerateContent?alt=sse", main)
    assert status == 429 and json.loads(raw) == {"error": {
        "code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}
    status, raw = _post(base + "generateContent", main)
    assert json.loads(raw)["candidates"][0]["content"]["parts"] == [{"text": "the end"}]
    status, raw = _post(base + "countTokens", {"contents": main["contents"]})
    assert status == 200 and json.loads(raw)["totalTokens"] > 0
    assert [r.kind for r in stub.requests] == ["side", "main", "main", "main", "other"]
    assert stub.requests[0].query["key"] == "<redacted>"


# -- Claude Code ---------------------------------------------------------------------------
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


@pytest.mark.realcli
def test_claude_gets_a_200k_prompt_whole(
    claude: str, sandbox: Sandbox, anthropic_stub: AnthropicStub
) -> None:
    prompt = big_prompt()
    anthropic_stub.push(Text("ok"))
    run = run_claude(claude, sandbox, anthropic_stub, prompt)
    assert run.returncode == 0, run.describe()
    assert run.json()["result"] == "ok"
    assert prompt in _conversation(anthropic_stub)


# -- Gemini CLI ----------------------------------------------------------------------------
def run_gemini(gemini: str, sandbox: Sandbox, stub: GeminiStub, prompt: str, *args: str,
               cwd: Any = None, **env: str) -> Run:
    return sandbox.run([gemini, *GEMINI_ARGS, *args], prompt, gemini_env(stub.base_url, **env),
                       cwd=cwd)


def _gemini_conversation(stub: GeminiStub, index: int = -1) -> str:
    return stub.conversation_text(stub.main_requests[index])


@pytest.mark.realcli
def test_gemini_runs_the_shell_tool_and_reports_the_final_text(
    gemini: str, sandbox: Sandbox, gemini_stub: GeminiStub
) -> None:
    stub = gemini_stub
    gemini_settings(sandbox)
    stub.push(ToolCall("printf 'made by gemini' > out.txt"), Text("FINAL-ANSWER: file written"))
    # no GEMINI_MODEL: its model router asks a small model first (a side request)
    run = run_gemini(gemini, sandbox, stub, "Please write out.txt (task-marker-9d2)")
    assert run.returncode == 0, run.describe()
    out = run.json()
    assert (sandbox.work / "out.txt").read_text() == "made by gemini"
    assert out["response"] == "FINAL-ANSWER: file written"
    assert "error" not in out
    assert UUID.match(out["session_id"])
    first, second = stub.main_requests
    assert "task-marker-9d2" in stub.conversation_text(first)
    assert "run_shell_command" in declared_tools(first.body)
    assert first.query.get("alt") == "sse" and first.path.endswith(":streamGenerateContent")
    responses = [p["functionResponse"] for c in second.body["contents"]
                 for p in c.get("parts", []) if "functionResponse" in p]
    assert [r["name"] for r in responses] == ["run_shell_command"]
    assert stub.of_kind("side"), stub.summary()  # the router's request, not scripted
    assert stub.pending() == 0
    # token counts: per model and role, the sums of the usageMetadata sent
    main_model = first.path.split("/models/")[1].split(":")[0]
    tokens = out["stats"]["models"][main_model]["roles"]["main"]["tokens"]
    assert tokens["prompt"] == sum(r.usage["promptTokenCount"] for r in stub.main_requests
                                   if r.usage)
    assert tokens["candidates"] == sum(r.usage["candidatesTokenCount"]
                                       for r in stub.main_requests if r.usage)
    assert out["stats"]["tools"]["byName"]["run_shell_command"]["success"] == 1


@pytest.mark.realcli
@pytest.mark.parametrize(
    ("status", "message"),
    [(400, "Request contains an invalid argument."),
     (429, "Resource has been exhausted (e.g. check quota).")],
)
def test_gemini_api_errors_surface_in_the_json_on_stderr(
    gemini: str, sandbox: Sandbox, gemini_stub: GeminiStub, status: int, message: str
) -> None:
    stub = gemini_stub
    gemini_settings(sandbox, maxAttempts=1)  # else 429/5xx are retried 10 times, 5 s+ apart
    stub.push(ApiError(status, message, times=None))
    run = run_gemini(gemini, sandbox, stub, "hello", GEMINI_MODEL="gemini-2.5-pro")
    assert run.returncode not in (0, None), run.describe()
    assert run.stdout == ""
    out = run.json("stderr")
    assert UUID.match(out["session_id"])
    assert out["error"]["code"] == status
    assert message in out["error"]["message"]
    assert len(stub.main_requests) == 1
    assert list(sandbox.tmp.glob("gemini-client-error-*.json"))  # its error report


@pytest.mark.realcli
def test_gemini_sessions_resume_by_id_or_latest(
    gemini: str, sandbox: Sandbox, gemini_stub: GeminiStub
) -> None:
    stub = gemini_stub
    gemini_settings(sandbox)
    model = {"GEMINI_MODEL": "gemini-2.5-pro"}
    chosen = str(uuid.uuid4())
    stub.push(ToolCall("printf one > one.txt"), Text("Task one done: CODEWORD-ALPHA"))
    first = run_gemini(gemini, sandbox, stub, "task one prompt", "--session-id", chosen, **model)
    assert first.returncode == 0, first.describe()
    assert first.json()["session_id"] == chosen

    stub.push(Text("Task two done"))
    second = run_gemini(gemini, sandbox, stub, "task two prompt", "--resume", chosen, **model)
    assert second.returncode == 0, second.describe()
    assert second.json()["session_id"] == chosen
    seen = _gemini_conversation(stub)
    assert "task one prompt" in seen and "CODEWORD-ALPHA" in seen and "task two prompt" in seen

    stub.push(Text("Task three done"))
    third = run_gemini(gemini, sandbox, stub, "task three prompt", "--resume", "latest", **model)
    assert third.returncode == 0 and third.json()["session_id"] == chosen
    assert "task two prompt" in _gemini_conversation(stub)

    taken = run_gemini(gemini, sandbox, stub, "x", "--session-id", chosen, **model)
    assert taken.returncode == 42, taken.describe()
    assert f'Session ID "{chosen}" already exists' in taken.stderr

    elsewhere = sandbox.root / "elsewhere"
    elsewhere.mkdir()
    moved = run_gemini(gemini, sandbox, stub, "x", "--resume", chosen, cwd=elsewhere, **model)
    assert moved.returncode == 42, moved.describe()
    assert "No previous sessions found for this project" in moved.stderr
    assert stub.pending() == 0


@pytest.mark.realcli
def test_gemini_gets_a_200k_prompt_whole(
    gemini: str, sandbox: Sandbox, gemini_stub: GeminiStub
) -> None:
    gemini_settings(sandbox)
    prompt = big_prompt()
    gemini_stub.push(Text("ok"))
    run = run_gemini(gemini, sandbox, gemini_stub, prompt, GEMINI_MODEL="gemini-2.5-pro")
    assert run.returncode == 0, run.describe()
    assert run.json()["response"] == "ok"
    assert prompt in _gemini_conversation(gemini_stub)


# -- both: where the shell tool runs -------------------------------------------------------
@pytest.mark.realcli
@pytest.mark.parametrize("cli", ["claude", "gemini"])
def test_shell_tool_runs_in_a_session_of_its_own(cli: str, sandbox: Sandbox) -> None:
    """The CLI (started here as a session leader) starts its shell tool with setsid: the
    tool is outside the CLI's process group and session."""
    binary = installed(cli)
    stub: AnthropicStub | GeminiStub
    if cli == "claude":
        stub = AnthropicStub()
        argv, env = [binary, *CLAUDE_ARGS], claude_env
    else:
        stub = GeminiStub()
        gemini_settings(sandbox)
        argv, env = [binary, *GEMINI_ARGS], gemini_env
    with stub:
        # no $(...): Gemini CLI refuses command substitution
        stub.push(ToolCall("cat /proc/self/stat > stat.txt"), Text("done"))
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=sandbox.work,
                                env=sandbox.env(env(stub.base_url)), start_new_session=True)
        out, err = proc.communicate("show the process ids", timeout=90)
        assert proc.returncode == 0, f"{out}\n{err}"
    fields = (sandbox.work / "stat.txt").read_text().rsplit(")", 1)[1].split()
    pgid, sid = int(fields[2]), int(fields[3])
    assert pgid != proc.pid and sid != proc.pid  # not the CLI's group nor its session
    assert pgid == sid  # a session (and group) leader: setsid
