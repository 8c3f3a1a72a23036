"""The real Copilot CLI alone (not through Tinytown) against the OpenAI stub, as a user
points it at a provider of their own: `COPILOT_PROVIDER_BASE_URL=.../v1`,
`COPILOT_PROVIDER_API_KEY`, `COPILOT_OFFLINE=true`, `COPILOT_MODEL=gpt-4o`; `copilot
--yolo`, the prompt on stdin. Its JSONL events and its usage file (what Tinytown reads
its tokens from), its text mode, API errors, retries and sessions.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agent_clis.real.clis import BY_NAME
from tests.stubs._base import Text, ToolCall
from tests.stubs.openai import OpenAIStub, bad_request, rate_limited
from tests.stubs.realcli import Run, Sandbox, installed

pytestmark = pytest.mark.realcli
COPILOT_ARGS = list(BY_NAME["copilot"].alone)

@pytest.fixture
def copilot() -> str:
    return installed("copilot")


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


def copilot_env(stub: OpenAIStub) -> dict[str, str]:
    return {"COPILOT_PROVIDER_BASE_URL": stub.api_url, "COPILOT_PROVIDER_API_KEY": "sk-stub",
            "COPILOT_OFFLINE": "true", "COPILOT_MODEL": "gpt-4o"}



def run_copilot(binary: str, sandbox: Sandbox, stub: OpenAIStub, prompt: str | None,
                *args: str) -> Run:
    return sandbox.run([binary, *COPILOT_ARGS, *args], prompt, copilot_env(stub))



def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]



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

