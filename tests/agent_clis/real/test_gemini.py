"""The real Gemini CLI alone (not through Tinytown) against the Gemini stub: what it
prints (`-o json`), its API errors (JSON on stderr), and its sessions (by id, `latest`,
per project). Run with a fresh HOME, configured only through environment variables and
~/.gemini/settings.json, as a user would; skipped when it is not installed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agent_clis.real.clis import BY_NAME
from tests.stubs._base import ApiError, Text, ToolCall
from tests.stubs.gemini import GeminiStub, declared_tools
from tests.stubs.realcli import Run, Sandbox, gemini_env, gemini_settings, installed

pytestmark = pytest.mark.realcli
GEMINI_ARGS = list(BY_NAME["gemini"].alone)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

@pytest.fixture
def gemini() -> str:
    return installed("gemini")


@pytest.fixture
def gemini_stub() -> Iterator[GeminiStub]:
    with GeminiStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


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

