"""The real Codex CLI: alone (not through Tinytown) against the OpenAI stub — its JSONL
events, a named model's classic tools, its API errors and retries, its WebSocket
fallback, resume and fork in either order of flags — and through Tinytown where its
transport fails and it recovers on its own: behind a proxy that refuses the WebSocket
upgrade (404: Codex prints each of its reconnects as an `error` event, then falls back
to HTTPS and finishes), and past a 429 it retried. Both rounds are ordinary: the task
`completed`, counted once, no pause.

Alone it runs as a user would: `OPENAI_API_KEY` and `~/.codex/config.toml`
`openai_base_url = ".../v1"`; `codex exec --json --dangerously-bypass-approvals-and-sandbox`,
the prompt on stdin.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.agent_clis.real.clis import BY_NAME
from tests.agent_clis.real.towns import Preset, preset_town
from tests.helpers import InProcessWorker, TownFixture
from tests.stubs._base import ApiError, Text, ToolCall
from tests.stubs.openai import OpenAIStub, bad_request, insufficient_quota, rate_limited
from tests.stubs.realcli import Run, Sandbox, installed
from tinytown.db import usage_store as round_usage

pytestmark = pytest.mark.realcli
CODEX_ARGS = list(BY_NAME["codex"].alone)

@pytest.fixture
def codex() -> str:
    return installed("codex")


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    with OpenAIStub() as stub:
        yield stub
        assert not stub.errors, stub.errors


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



# -- through Tinytown ----------------------------------------------------------------------
@pytest.fixture
def codex_town(town_factory: Callable[..., TownFixture],
               worker_in_process: Callable[..., InProcessWorker],
               monkeypatch: pytest.MonkeyPatch) -> Iterator[Preset]:
    yield from preset_town("codex", town_factory, worker_in_process, monkeypatch)


def _counted_once(preset: Preset, task_id: str) -> None:
    """One round, not paused, its tokens those of the stub's one successful request."""
    agent = preset.town.town.resolve("q")
    assert (agent.state.value, agent.hold, agent.rounds_completed) == ("idle", None, 1)
    served = [r for r in preset.stub.main_requests if r.usage]
    tokens = sum(r.usage["output_tokens"] for r in served if r.usage)
    for usage in (agent.usage, preset.town.town.store.require_task(task_id).usage,
                  round_usage.town_totals(preset.town.town.store)):
        assert usage is not None and usage.rounds == 1 and usage.output_tokens == tokens
    logs = preset.town.town.settings.logs_dir / "q"
    assert sorted(p.name for p in logs.glob("round-*.log")) == ["round-1.log"]


def test_codex_behind_a_websocket_refusing_proxy_completes_its_task(codex_town: Preset) -> None:
    stub = codex_town.stub
    assert isinstance(stub, OpenAIStub)
    stub.websocket_status = 404  # as many proxies answer: Codex retries, then uses HTTPS
    stub.push(ToolCall("printf hi > hello.txt"), Text("Wrote hello.txt"))
    worker = codex_town.agent("q")
    state, result, task_id = codex_town.task(worker, "q", "Write hello.txt containing hi")
    assert state == "completed", result
    assert result == "Wrote hello.txt"
    assert (codex_town.town.root / "hello.txt").read_text() == "hi"
    log = (codex_town.town.town.settings.logs_dir / "q" / "round-1.log").read_text()
    assert '"type":"error","message":"Reconnecting... ' in log  # what it went through
    assert len(stub.of_kind("websocket")) > 1
    _counted_once(codex_town, task_id)


def test_codex_past_a_429_it_retried_completes_without_a_pause(codex_town: Preset) -> None:
    stub = codex_town.stub
    stub.push(rate_limited(1, times=1), ToolCall("printf hi > hello.txt"),
              Text("Wrote hello.txt"))
    worker = codex_town.agent("q")
    state, result, task_id = codex_town.task(worker, "q", "Write hello.txt containing hi")
    assert state == "completed", result
    assert [r.status for r in stub.main_requests] == [429, 200, 200]  # no second run
    log = (codex_town.town.town.settings.logs_dir / "q" / "round-1.log").read_text()
    assert "429 Too Many Requests" in log
    _counted_once(codex_town, task_id)
