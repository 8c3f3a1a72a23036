"""The real Codex CLI, Copilot CLI, aider and auggie against stubs of their model APIs.

Each CLI runs directly (not through Tinytown) from a plain command line, with a fresh
HOME and configuration only through environment variables and the CLI's own config files
under HOME, as a user would:

* Codex CLI: `OPENAI_API_KEY` and `~/.codex/config.toml` `openai_base_url = ".../v1"`;
  `codex exec --json --dangerously-bypass-approvals-and-sandbox`, the prompt on stdin.
* Copilot CLI: `COPILOT_PROVIDER_BASE_URL=.../v1`, `COPILOT_PROVIDER_API_KEY`,
  `COPILOT_OFFLINE=true`, `COPILOT_MODEL=gpt-4o`; `copilot --yolo`, the prompt on stdin.
* aider: `OPENAI_API_BASE=.../v1`, `OPENAI_API_KEY`, `AIDER_CHECK_UPDATE=false`,
  `AIDER_ANALYTICS=false`; `aider --yes-always --no-auto-commits --message-file FILE`.
* auggie: `AUGMENT_SESSION_AUTH` naming the stub as tenantURL;
  `auggie --print --instruction-file FILE`.

A CLI that is not installed is skipped with the reason (scripts/install-clis installs
them). The stub tests at the top need no CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.stubs._base import ApiError, Text, ToolCall
from tests.stubs.augment import AugmentStub
from tests.stubs.openai import (
    OpenAIStub,
    aider_new_file,
    bad_request,
    insufficient_quota,
    rate_limited,
)
from tests.stubs.realcli import Run, Sandbox, installed

CODEX_ARGS = ["exec", "--json", "--dangerously-bypass-approvals-and-sandbox"]
COPILOT_ARGS = ["--yolo"]
AIDER_ARGS = ["--yes-always", "--no-auto-commits"]
AUGGIE_ARGS = ["--print"]


def big_prompt() -> str:
    """Over 200 KiB of distinct lines of words between two markers (plain words: Copilot
    CLI counts tokens itself and refuses a prompt over its model's budget)."""
    words = "the agent reads a task and writes code with tests for the town".split()
    lines = [f"line {i:06d} " + " ".join(words[(i + j) % len(words)] for j in range(12))
             for i in range(3200)]
    text = "BIG-PROMPT-BEGIN\n" + "\n".join(lines) + "\nBIG-PROMPT-END: reply with ok"
    assert len(text.encode()) > 200 * 1024
    return text


# -- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def codex() -> str:
    return installed("codex")


@pytest.fixture
def copilot() -> str:
    return installed("copilot")


@pytest.fixture
def auggie() -> str:
    return installed("auggie")


@pytest.fixture
def aider() -> str:
    return installed("aider")


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


@pytest.fixture
def augment_stub() -> Iterator[AugmentStub]:
    with AugmentStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


# -- running each CLI ----------------------------------------------------------------------
def codex_config(sandbox: Sandbox, stub: OpenAIStub) -> None:
    config = sandbox.home / ".codex" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'openai_base_url = "{stub.api_url}"\n')


def run_codex(binary: str, sandbox: Sandbox, stub: OpenAIStub, prompt: str,
              *args: str, argv: list[str] | None = None) -> Run:
    codex_config(sandbox, stub)
    return sandbox.run([binary, *(argv or CODEX_ARGS), *args], prompt,
                       {"OPENAI_API_KEY": "sk-stub-key"})


def codex_events(run: Run) -> list[dict[str, Any]]:
    events = []
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    assert events, run.describe()
    return events


def copilot_env(stub: OpenAIStub) -> dict[str, str]:
    return {"COPILOT_PROVIDER_BASE_URL": stub.api_url, "COPILOT_PROVIDER_API_KEY": "sk-stub",
            "COPILOT_OFFLINE": "true", "COPILOT_MODEL": "gpt-4o"}


def run_copilot(binary: str, sandbox: Sandbox, stub: OpenAIStub, prompt: str | None,
                *args: str) -> Run:
    return sandbox.run([binary, *COPILOT_ARGS, *args], prompt, copilot_env(stub))


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def aider_env(stub: OpenAIStub) -> dict[str, str]:
    return {"OPENAI_API_BASE": stub.api_url, "OPENAI_API_KEY": "sk-stub",
            "AIDER_CHECK_UPDATE": "false", "AIDER_ANALYTICS": "false"}


def run_aider(binary: str, sandbox: Sandbox, stub: OpenAIStub, prompt: str,
              *args: str) -> Run:
    message = sandbox.root / f"message-{uuid.uuid4().hex[:8]}.txt"
    message.write_text(prompt)
    return sandbox.run([binary, *AIDER_ARGS, *args, "--message-file", str(message)], None,
                       aider_env(stub))


def run_auggie(binary: str, sandbox: Sandbox, stub: AugmentStub, prompt: str,
               *args: str) -> Run:
    instruction = sandbox.root / f"instruction-{uuid.uuid4().hex[:8]}.txt"
    instruction.write_text(prompt)
    return sandbox.run([binary, *AUGGIE_ARGS, *args, "--instruction-file", str(instruction)],
                       None, {"AUGMENT_SESSION_AUTH": stub.session_auth()})


def git_init(path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    for key, value in (("user.name", "Stub"), ("user.email", "stub@example.invalid")):
        subprocess.run(["git", "-C", str(path), "config", key, value], check=True)


# -- the stubs alone -----------------------------------------------------------------------
def _post(url: str, body: Any) -> tuple[int, bytes]:
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"content-type": "application/json",
                                  "authorization": "Bearer secret"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _sse_data(raw: bytes) -> list[Any]:
    out = []
    for block in raw.decode().split("\n\n"):
        for line in block.splitlines():
            if line.startswith("data: ") and line != "data: [DONE]":
                out.append(json.loads(line[6:]))
    return out


BASH_TOOL = {"type": "function", "function": {"name": "bash", "parameters": {
    "type": "object", "required": ["command", "description"],
    "properties": {"command": {"type": "string"}, "description": {"type": "string"}}}}}


def test_openai_stub_chat_completions(openai_stub: OpenAIStub) -> None:
    stub = openai_stub
    stub.push(ToolCall("echo hi > f"), bad_request("nope"), Text("the end"))
    url = stub.api_url + "/chat/completions"
    side = {"model": "gpt-4o-mini", "messages": [
        {"role": "system", "content": "Generate a concise commit message for this diff"},
        {"role": "user", "content": "diff"}]}
    status, raw = _post(url, side)  # answered without touching the script
    assert status == 200 and json.loads(raw)["choices"][0]["message"]["content"]
    main = {"model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
            "tools": [BASH_TOOL], "messages": [{"role": "user", "content": "do it"}]}
    status, raw = _post(url, main)
    chunks = _sse_data(raw)
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks
             if c["choices"] and "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0]["function"]["name"] == "bash"
    args = json.loads("".join(c["function"]["arguments"] for c in calls))
    assert args["command"] == "echo hi > f" and args["description"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["prompt_tokens"] > 0
    status, raw = _post(url, main)
    assert status == 400 and json.loads(raw)["error"]["message"] == "nope"
    status, raw = _post(url, {**main, "stream": False})
    assert json.loads(raw)["choices"][0]["message"]["content"] == "the end"
    assert [r.kind for r in stub.requests] == ["side", "main", "main", "main"]
    assert stub.requests[1].headers["authorization"] == "<redacted>"


def test_openai_stub_responses_shell_call_follows_the_offered_tools(
    openai_stub: OpenAIStub,
) -> None:
    stub = openai_stub
    url = stub.api_url + "/responses"
    classic = {"model": "m", "stream": True, "input": [], "tools": [
        {"type": "function", "name": "exec_command", "parameters": {
            "type": "object", "required": ["cmd"], "properties": {"cmd": {"type": "string"}}}}]}
    exec_tool = {"type": "custom", "name": "exec", "description": "… tools.exec_command(…"}
    code_mode = {"model": "m", "stream": True, "tools": [], "input": [
        {"type": "additional_tools",
         "tools": [{"type": "namespace", "name": "functions", "tools": [exec_tool]}]}]}
    stub.push(ToolCall("touch a"), ToolCall("touch b"), Text("done"))
    items = []
    for body in (classic, code_mode, classic):
        status, raw = _post(url, body)
        assert status == 200
        events = _sse_data(raw)
        assert events[0]["type"] == "response.created"
        assert events[-1]["type"] == "response.completed"
        assert events[-1]["response"]["usage"]["input_tokens"] > 0
        items.append(events[-1]["response"]["output"][-1])
    assert items[0]["type"] == "function_call" and items[0]["name"] == "exec_command"
    assert json.loads(items[0]["arguments"]) == {"cmd": "touch a"}
    assert items[1]["type"] == "custom_tool_call" and items[1]["name"] == "exec"
    assert 'tools.exec_command({cmd: "touch b"})' in items[1]["input"]
    assert items[2]["content"][0]["text"] == "done"
    status, raw = _post(url, {"model": "m", "input": "x"})  # nothing left: a default text
    assert status == 200 and stub.pending() == 0


@pytest.mark.parametrize("status", [426, 404])
def test_openai_stub_refuses_websockets_with_426_or_as_set(
    openai_stub: OpenAIStub, status: int,
) -> None:
    if status != 426:
        openai_stub.websocket_status = status  # as a proxy without WebSockets answers
    req = urllib.request.Request(openai_stub.api_url + "/responses",
                                 headers={"upgrade": "websocket", "connection": "Upgrade"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    assert info.value.code == status
    info.value.close()
    assert [r.kind for r in openai_stub.requests] == ["websocket"]


def test_augment_stub_answers_ndjson(augment_stub: AugmentStub) -> None:
    stub = augment_stub
    stub.push(ToolCall("echo hi"), ApiError(429, times=1), Text("fin"))
    url = stub.base_url + "/chat-stream"
    status, raw = _post(url, {"nodes": [], "chat_history": []})
    lines = [json.loads(x) for x in raw.decode().splitlines()]
    tool_use = lines[-1]["nodes"][0]["tool_use"]
    assert tool_use["tool_name"] == "launch-process"
    assert json.loads(tool_use["input_json"])["command"] == "echo hi"
    assert lines[-1]["stop_reason"] == 3
    assert _post(url, {})[0] == 429
    status, raw = _post(url, {})
    assert json.loads(raw.decode().splitlines()[0])["text"] == "fin"
    status, raw = _post(stub.base_url + "/get-models", {})
    assert json.loads(raw)["default_model"]


# -- Codex CLI -----------------------------------------------------------------------------
@pytest.mark.realcli
def test_codex_runs_its_shell_tool_and_reports_in_jsonl(
    codex: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    stub = openai_stub
    stub.push(ToolCall("echo hello > out.txt; cat /proc/self/stat > stat.txt"),
              Text("All done: wrote out.txt"))
    run = run_codex(codex, sandbox, stub, "Write hello into out.txt")
    assert run.returncode == 0, run.describe()
    assert (sandbox.work / "out.txt").read_text() == "hello\n"
    events = codex_events(run)
    assert events[0]["type"] == "thread.started" and uuid.UUID(events[0]["thread_id"])
    done = [e["item"] for e in events if e["type"] == "item.completed"]
    commands = [i for i in done if i["type"] == "command_execution"]
    assert commands and commands[0]["exit_code"] == 0 and "out.txt" in commands[0]["command"]
    answers = [i["text"] for i in done if i["type"] == "agent_message"]
    assert answers[-1] == "All done: wrote out.txt"
    assert events[-1]["type"] == "turn.completed"
    main = stub.main_requests
    assert len(main) == 2
    assert "Write hello into out.txt" in stub.conversation_text(main[0])
    # the turn's usage is the sum over its model requests
    usage = events[-1]["usage"]
    assert usage["input_tokens"] == sum(r.usage["input_tokens"] for r in main)
    assert usage["output_tokens"] == sum(r.usage["output_tokens"] for r in main)
    # the tool ran in a session of its own (setsid), not in the test's
    fields = (sandbox.work / "stat.txt").read_text().rsplit(")", 1)[1].split()
    assert int(fields[3]) != os.getsid(0) and int(fields[2]) == int(fields[3])


@pytest.mark.realcli
def test_codex_classic_tools_with_a_named_model(
    codex: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    """With -m gpt-5.4-mini (the codex-mini preset) Codex offers exec_command directly
    and says in an `error` item that it has no metadata for the model: not fatal."""
    openai_stub.push(ToolCall("echo mini > out.txt"), Text("ok"))
    run = run_codex(codex, sandbox, openai_stub, "go", "-m", "gpt-5.4-mini",
                    "-c", 'model_reasoning_effort="medium"')
    assert run.returncode == 0, run.describe()
    assert (sandbox.work / "out.txt").read_text() == "mini\n"
    assert "exec_command" in openai_stub.tool_names(openai_stub.main_requests[0])
    assert openai_stub.main_requests[0].body["model"] == "gpt-5.4-mini"


@pytest.mark.realcli
@pytest.mark.parametrize("reply, message", [
    (bad_request("The model `nope` does not exist", times=None), "The model `nope` does not exist"),
    (insufficient_quota(), "Quota exceeded"),
], ids=["400", "insufficient_quota"])
def test_codex_api_errors_fail_the_turn(
    codex: str, sandbox: Sandbox, openai_stub: OpenAIStub, reply: ApiError, message: str,
) -> None:
    openai_stub.push(reply)
    run = run_codex(codex, sandbox, openai_stub, "Do something")
    assert run.returncode == 1, run.describe()
    events = codex_events(run)
    assert events[-1]["type"] == "turn.failed"
    assert message in events[-1]["error"]["message"]
    assert len(openai_stub.main_requests) == 1  # neither is retried


@pytest.mark.realcli
def test_codex_rate_limit_gives_up_after_five_retries(
    codex: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    openai_stub.push(rate_limited(0))
    run = run_codex(codex, sandbox, openai_stub, "Do something")
    assert run.returncode == 1, run.describe()
    events = codex_events(run)
    reconnects = [e for e in events if e["type"] == "error" and "Reconnecting" in e["message"]]
    assert len(reconnects) == 5  # `error` events that are not the end
    assert "exceeded retry limit, last status: 429" in events[-1]["error"]["message"]
    assert len(openai_stub.main_requests) == 6


@pytest.mark.realcli
def test_codex_falls_back_to_https_after_websocket_404s(
    codex: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    """A WebSocket upgrade refused with anything but 426 costs Codex its 5 reconnects,
    each an `error` event, before it falls back to HTTPS and finishes its turn."""
    openai_stub.websocket_status = 404
    openai_stub.push(ToolCall("echo hi > hello.txt"), Text("Wrote hello.txt"))
    run = run_codex(codex, sandbox, openai_stub, "Write hello.txt containing hi")
    assert run.returncode == 0, run.describe()
    assert (sandbox.work / "hello.txt").read_text() == "hi\n"
    events = codex_events(run)
    reconnects = [e for e in events if e["type"] == "error"]
    assert reconnects and all("Reconnecting..." in e["message"] and "404" in e["message"]
                              for e in reconnects)
    assert events[-1]["type"] == "turn.completed"
    assert [e["item"]["text"] for e in events if e["type"] == "item.completed"
            and e["item"]["type"] == "agent_message"] == ["Wrote hello.txt"]
    assert len(openai_stub.of_kind("websocket")) > 1 and len(openai_stub.main_requests) == 2


@pytest.mark.realcli
@pytest.mark.parametrize("order", ["flags-first", "subcommand-first"])
def test_codex_resume_and_fork_carry_the_conversation(
    codex: str, sandbox: Sandbox, openai_stub: OpenAIStub, order: str,
) -> None:
    stub = openai_stub
    stub.push(Text("First answer ALPHA"))
    first = run_codex(codex, sandbox, stub, "Remember the word ZEBRA")
    assert first.returncode == 0, first.describe()
    thread = codex_events(first)[0]["thread_id"]

    def argv(sub: str) -> list[str]:
        if order == "flags-first":  # the preset's command, then the subcommand
            return [*CODEX_ARGS, sub, thread, "-"]
        return ["exec", sub, thread, *CODEX_ARGS[1:], "-"]

    stub.push(Text("second answer"))
    resumed = run_codex(codex, sandbox, stub, "What was the word?", argv=argv("resume"))
    assert resumed.returncode == 0, resumed.describe()
    assert codex_events(resumed)[0]["thread_id"] == thread  # the same session
    seen = stub.conversation_text(stub.main_requests[-1])
    assert "Remember the word ZEBRA" in seen and "First answer ALPHA" in seen
    assert "What was the word?" in seen

    stub.push(Text("forked answer"))
    forked = run_codex(codex, sandbox, stub, "A fork question", argv=argv("fork"))
    assert forked.returncode == 0, forked.describe()
    assert codex_events(forked)[0]["thread_id"] != thread  # a new session
    seen = stub.conversation_text(stub.main_requests[-1])
    assert "Remember the word ZEBRA" in seen and "A fork question" in seen


@pytest.mark.realcli
def test_codex_gets_a_200k_prompt_whole(
    codex: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    prompt = big_prompt()
    openai_stub.push(Text("ok"))
    run = run_codex(codex, sandbox, openai_stub, prompt)
    assert run.returncode == 0, run.describe()
    assert prompt in openai_stub.conversation_text(openai_stub.main_requests[0])


# -- Copilot CLI ---------------------------------------------------------------------------
@pytest.mark.realcli
def test_copilot_runs_bash_and_reports_in_jsonl(
    copilot: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    stub = openai_stub
    stub.push(ToolCall("echo hello > out.txt; cat /proc/self/stat > stat.txt"),
              Text("All done: wrote out.txt"))
    usage_file = sandbox.root / "usage.json"
    run = run_copilot(copilot, sandbox, stub, "Write hello into out.txt",
                      "--output-format", "json", "--usage-output-file", str(usage_file))
    assert run.returncode == 0, run.describe()
    assert (sandbox.work / "out.txt").read_text() == "hello\n"
    events = json_lines(run.stdout)
    messages = [e["data"] for e in events if e["type"] == "assistant.message"]
    assert messages[0]["toolRequests"][0]["name"] == "bash"
    assert messages[-1]["content"] == "All done: wrote out.txt"
    result = events[-1]
    assert result["type"] == "result" and result["exitCode"] == 0
    assert uuid.UUID(result["sessionId"])
    main = stub.main_requests
    assert len(main) == 2 and not stub.of_kind("side")
    metrics = json.loads(usage_file.read_text())["modelMetrics"]["gpt-4o"]
    assert metrics["requests"]["count"] == 2
    assert metrics["usage"]["inputTokens"] == sum(r.usage["input_tokens"] for r in main)
    assert metrics["usage"]["outputTokens"] == sum(r.usage["output_tokens"] for r in main)
    fields = (sandbox.work / "stat.txt").read_text().rsplit(")", 1)[1].split()
    assert int(fields[3]) != os.getsid(0) and int(fields[2]) == int(fields[3])


@pytest.mark.realcli
def test_copilot_text_mode_answer_on_stdout_stats_on_stderr(
    copilot: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    openai_stub.push(Text("plain answer"))
    run = run_copilot(copilot, sandbox, openai_stub, "hello")
    assert run.returncode == 0, run.describe()
    assert run.stdout.strip() == "plain answer"
    assert "Tokens" in run.stderr and "copilot --resume=" in run.stderr


@pytest.mark.realcli
def test_copilot_api_error_exits_1(
    copilot: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    openai_stub.push(bad_request("The model `nope` does not exist", times=None))
    run = run_copilot(copilot, sandbox, openai_stub, "Do something")
    assert run.returncode == 1, run.describe()
    assert "400 The model `nope` does not exist" in run.stderr
    run = run_copilot(copilot, sandbox, openai_stub, "Do something", "--output-format", "json")
    assert run.returncode == 1, run.describe()
    events = json_lines(run.stdout)
    errors = [e["data"] for e in events if e["type"] == "session.error"]
    assert errors and errors[0]["statusCode"] == 400
    assert "The model `nope` does not exist" in errors[0]["message"]
    assert events[-1]["type"] == "result" and events[-1]["exitCode"] == 1


@pytest.mark.realcli
def test_copilot_rate_limit_gives_up_after_five_retries(
    copilot: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    """With a whole-second retry-after it waits that long between its 5 retries (~5 s);
    without one (insufficient_quota) or with a fractional one it backs off for ~50 s."""
    openai_stub.push(rate_limited(1))
    run = run_copilot(copilot, sandbox, openai_stub, "Do something")
    assert run.returncode == 1, run.describe()
    assert "retried 5 times" in run.stderr and "429" in run.stderr
    assert len(openai_stub.main_requests) == 6


@pytest.mark.realcli
def test_copilot_session_id_and_resume_carry_the_conversation(
    copilot: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    stub = openai_stub
    session = str(uuid.uuid4())
    stub.push(Text("First answer ALPHA"))
    first = run_copilot(copilot, sandbox, stub, "Remember the word ZEBRA",
                        "--session-id", session, "--output-format", "json")
    assert first.returncode == 0, first.describe()
    assert json_lines(first.stdout)[-1]["sessionId"] == session  # the id we chose
    for args in (["--session-id", session], [f"--resume={session}"], ["--resume", session]):
        stub.push(Text("again"))
        again = run_copilot(copilot, sandbox, stub, "What was the word?", *args)
        assert again.returncode == 0, again.describe()
        seen = stub.conversation_text(stub.main_requests[-1])
        assert "Remember the word ZEBRA" in seen and "First answer ALPHA" in seen, args


@pytest.mark.realcli
def test_copilot_gets_a_200k_prompt_whole(
    copilot: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    """Copilot CLI counts the prompt's tokens itself and refuses one over its budget for a
    BYOK model (64000 for gpt-4o: "Request exceeds the model's prompt budget after
    reserving output (65747 tokens; limit 64000)", exit 1, nothing sent);
    COPILOT_PROVIDER_MAX_PROMPT_TOKENS raises it."""
    prompt = big_prompt()
    openai_stub.push(Text("ok"))
    run = sandbox.run([copilot, *COPILOT_ARGS], prompt,
                      {**copilot_env(openai_stub), "COPILOT_PROVIDER_MAX_PROMPT_TOKENS": "128000"})
    assert run.returncode == 0, run.describe()
    assert prompt in openai_stub.conversation_text(openai_stub.main_requests[0])


# -- aider ---------------------------------------------------------------------------------
@pytest.mark.realcli
def test_aider_applies_an_edit_that_creates_a_file(
    aider: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    git_init(sandbox.work)
    openai_stub.push(Text(aider_new_file("hello.txt", "hello world", before="FINAL-WORDS")))
    run = run_aider(aider, sandbox, openai_stub, "Create hello.txt saying hello world")
    assert run.returncode == 0, run.describe()
    assert (sandbox.work / "hello.txt").read_text() == "hello world\n"
    assert "FINAL-WORDS" in run.stdout and "Applied edit to hello.txt" in run.stdout
    assert "Tokens:" in run.stdout  # "Tokens: 2.4k sent, 16 received. Cost: …"
    log = subprocess.run(["git", "-C", str(sandbox.work), "log", "--oneline"],
                         capture_output=True, text=True)
    assert log.stdout == ""  # --no-auto-commits: nothing committed
    assert len(openai_stub.main_requests) == 1 and not openai_stub.main_requests[0].body.get(
        "tools")


@pytest.mark.realcli
def test_aider_does_not_run_suggested_shell_commands(
    aider: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    """--yes-always does not approve shell commands (aider asks for an explicit yes)."""
    openai_stub.push(Text("Run this:\n\n```bash\necho ran > ran.txt\n```\n"))
    run = run_aider(aider, sandbox, openai_stub, "Run a command", "--no-git")
    assert run.returncode == 0, run.describe()
    assert "echo ran > ran.txt" in run.stdout
    assert not (sandbox.work / "ran.txt").exists()


@pytest.mark.realcli
def test_aider_api_error_exits_0_with_the_error_in_stdout(
    aider: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    openai_stub.push(bad_request("The model `nope` does not exist", times=None))
    run = run_aider(aider, sandbox, openai_stub, "Do something", "--no-git")
    assert run.returncode == 0, run.describe()
    assert "litellm.BadRequestError: OpenAIException - The model `nope` does not exist" in (
        run.stdout)
    assert len(openai_stub.main_requests) == 1


@pytest.mark.realcli
def test_aider_restore_chat_history_carries_the_conversation(
    aider: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    history = sandbox.root / "agent.chat.history.md"
    args = ("--no-git", "--chat-history-file", str(history), "--restore-chat-history")
    openai_stub.push(Text("First answer ALPHA"))
    first = run_aider(aider, sandbox, openai_stub, "Remember the word ZEBRA", *args)
    assert first.returncode == 0, first.describe()
    openai_stub.push(Text("It was ZEBRA"))
    second = run_aider(aider, sandbox, openai_stub, "What was the word?", *args)
    assert second.returncode == 0, second.describe()
    assert "Restored previous conversation history." in second.stdout
    seen = openai_stub.conversation_text(openai_stub.main_requests[-1])
    assert "Remember the word ZEBRA" in seen and "First answer ALPHA" in seen


@pytest.mark.realcli
def test_aider_gets_a_200k_prompt_whole_through_message_file(
    aider: str, sandbox: Sandbox, openai_stub: OpenAIStub,
) -> None:
    prompt = big_prompt()
    with pytest.raises(OSError) as info:  # one argv element is capped at 128 KiB
        subprocess.run([aider, "--message", prompt], capture_output=True, timeout=30)
    assert info.value.errno == 7  # E2BIG
    openai_stub.push(Text("ok"))
    run = run_aider(aider, sandbox, openai_stub, prompt, "--no-git")
    assert run.returncode == 0, run.describe()
    assert prompt in openai_stub.conversation_text(openai_stub.main_requests[0])


# -- auggie --------------------------------------------------------------------------------
@pytest.mark.realcli
def test_auggie_runs_launch_process_and_reports_json(
    auggie: str, sandbox: Sandbox, augment_stub: AugmentStub,
) -> None:
    stub = augment_stub
    stub.push(ToolCall("echo hello > out.txt; cat /proc/self/stat > stat.txt"),
              Text("All done AUG"))
    run = run_auggie(auggie, sandbox, stub, "Write hello into out.txt",
                     "--output-format", "json")
    assert run.returncode == 0, run.describe()
    assert (sandbox.work / "out.txt").read_text() == "hello\n"
    result = run.json()
    assert result["type"] == "result" and result["result"] == "All done AUG"
    assert result["is_error"] is False and uuid.UUID(result["session_id"])
    main = stub.main_requests
    assert len(main) == 2
    assert "Write hello into out.txt" in stub.conversation_text(main[0])
    results = [n["tool_result_node"] for n in main[1].body["nodes"] if n.get("type") == 1]
    assert results and not results[0]["is_error"]
    fields = (sandbox.work / "stat.txt").read_text().rsplit(")", 1)[1].split()
    assert int(fields[3]) != os.getsid(0) and int(fields[2]) == int(fields[3])


@pytest.mark.realcli
def test_auggie_api_errors_exit_1(
    auggie: str, sandbox: Sandbox, augment_stub: AugmentStub,
) -> None:
    augment_stub.push(ApiError(400, "bad", times=None))
    run = run_auggie(auggie, sandbox, augment_stub, "Do it", "--output-format", "json")
    assert run.returncode == 1, run.describe()
    assert run.stdout.strip() == ""  # no JSON result at all
    assert "Invalid request: HTTP error: 400" in run.stderr
    augment_stub.clear_script()
    augment_stub.push(ApiError(429, "slow down", times=None))
    run = run_auggie(auggie, sandbox, augment_stub, "Do it", "--retry-timeout", "2")
    assert run.returncode == 1, run.describe()
    assert "Rate limit reached. Retrying" in run.stderr
    assert "exceeding retry timeout of 2s: Rate limited" in run.stderr


@pytest.mark.realcli
def test_auggie_resume_carries_the_conversation(
    auggie: str, sandbox: Sandbox, augment_stub: AugmentStub,
) -> None:
    stub = augment_stub
    stub.push(Text("First answer ALPHA"))
    first = run_auggie(auggie, sandbox, stub, "Remember the word ZEBRA",
                       "--output-format", "json")
    assert first.returncode == 0, first.describe()
    session = first.json()["session_id"]
    stub.push(Text("It was ZEBRA"))
    second = run_auggie(auggie, sandbox, stub, "What was the word?", "--resume", session,
                        "--output-format", "json")
    assert second.returncode == 0, second.describe()
    assert second.json()["session_id"] == session
    history = stub.main_requests[-1].body["chat_history"]
    assert len(history) == 1
    seen = stub.conversation_text(stub.main_requests[-1])
    assert "Remember the word ZEBRA" in seen and "First answer ALPHA" in seen


@pytest.mark.realcli
def test_auggie_gets_a_200k_prompt_whole(
    auggie: str, sandbox: Sandbox, augment_stub: AugmentStub,
) -> None:
    prompt = big_prompt()
    augment_stub.push(Text("ok"))
    run = run_auggie(auggie, sandbox, augment_stub, prompt)
    assert run.returncode == 0, run.describe()
    assert prompt in augment_stub.conversation_text(augment_stub.main_requests[0])
