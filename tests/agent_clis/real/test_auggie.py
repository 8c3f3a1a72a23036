"""The real auggie alone (not through Tinytown) against the Augment stub:
`AUGMENT_SESSION_AUTH` naming the stub as its tenant URL; `auggie --print
--instruction-file FILE`. Its JSON report, its API errors and retries, its sessions.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.agent_clis.real.clis import BY_NAME
from tests.stubs._base import ApiError, Text, ToolCall
from tests.stubs.augment import AugmentStub
from tests.stubs.realcli import Run, Sandbox, installed

pytestmark = pytest.mark.realcli
AUGGIE_ARGS = list(BY_NAME["auggie"].alone)

@pytest.fixture
def auggie() -> str:
    return installed("auggie")


@pytest.fixture
def augment_stub() -> Iterator[AugmentStub]:
    with AugmentStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


def run_auggie(binary: str, sandbox: Sandbox, stub: AugmentStub, prompt: str,
               *args: str) -> Run:
    instruction = sandbox.root / f"instruction-{uuid.uuid4().hex[:8]}.txt"
    instruction.write_text(prompt)
    return sandbox.run([binary, *AUGGIE_ARGS, *args, "--instruction-file", str(instruction)],
                       None, {"AUGMENT_SESSION_AUTH": stub.session_auth()})



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

