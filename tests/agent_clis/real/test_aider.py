"""The real aider alone (not through Tinytown) against the OpenAI stub: `OPENAI_API_BASE=
.../v1`, `OPENAI_API_KEY`, `AIDER_CHECK_UPDATE=false`, `AIDER_ANALYTICS=false`; `aider
--yes-always --no-auto-commits --message-file FILE`. Its edits, the shell commands it
does not run, its API errors (exit 0), its chat history, and why the prompt is a file.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_clis.real.clis import BY_NAME, big_prompt
from tests.stubs._base import Text
from tests.stubs.openai import OpenAIStub, aider_new_file, bad_request
from tests.stubs.realcli import Run, Sandbox, installed

pytestmark = pytest.mark.realcli
AIDER_ARGS = list(BY_NAME["aider"].alone)

@pytest.fixture
def aider() -> str:
    return installed("aider")


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


def aider_env(stub: OpenAIStub) -> dict[str, str]:
    return {"OPENAI_API_BASE": stub.api_url, "OPENAI_API_KEY": "sk-stub",
            "AIDER_CHECK_UPDATE": "false", "AIDER_ANALYTICS": "false"}



def run_aider(binary: str, sandbox: Sandbox, stub: OpenAIStub, prompt: str,
              *args: str) -> Run:
    message = sandbox.root / f"message-{uuid.uuid4().hex[:8]}.txt"
    message.write_text(prompt)
    return sandbox.run([binary, *AIDER_ARGS, *args, "--message-file", str(message)], None,
                       aider_env(stub))



def git_init(path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    for key, value in (("user.name", "Stub"), ("user.email", "stub@example.invalid")):
        subprocess.run(["git", "-C", str(path), "config", key, value], check=True)



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

