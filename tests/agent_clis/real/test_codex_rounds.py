"""The real Codex CLI through Tinytown where its transport fails and it recovers on its
own: behind a proxy that refuses the WebSocket upgrade (404: Codex prints each of its
reconnects as an `error` event, then falls back to HTTPS and finishes), and past a 429
it retried. Both rounds are ordinary: the task `completed`, counted once, no pause."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import InProcessWorker, TownFixture
from tests.stubs._base import Text, ToolCall
from tests.stubs.openai import OpenAIStub, rate_limited
from tests.stubs.test_presets import Preset, preset_town
from tinytown.db import usage as round_usage

pytestmark = pytest.mark.realcli


@pytest.fixture
def codex(town_factory: Callable[..., TownFixture],
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


def test_codex_behind_a_websocket_refusing_proxy_completes_its_task(codex: Preset) -> None:
    stub = codex.stub
    assert isinstance(stub, OpenAIStub)
    stub.websocket_status = 404  # as many proxies answer: Codex retries, then uses HTTPS
    stub.push(ToolCall("printf hi > hello.txt"), Text("Wrote hello.txt"))
    worker = codex.agent("q")
    state, result, task_id = codex.task(worker, "q", "Write hello.txt containing hi")
    assert state == "completed", result
    assert result == "Wrote hello.txt"
    assert (codex.town.root / "hello.txt").read_text() == "hi"
    log = (codex.town.town.settings.logs_dir / "q" / "round-1.log").read_text()
    assert '"type":"error","message":"Reconnecting... ' in log  # what it went through
    assert len(stub.of_kind("websocket")) > 1
    _counted_once(codex, task_id)


def test_codex_past_a_429_it_retried_completes_without_a_pause(codex: Preset) -> None:
    stub = codex.stub
    stub.push(rate_limited(1, times=1), ToolCall("printf hi > hello.txt"),
              Text("Wrote hello.txt"))
    worker = codex.agent("q")
    state, result, task_id = codex.task(worker, "q", "Write hello.txt containing hi")
    assert state == "completed", result
    assert [r.status for r in stub.main_requests] == [429, 200, 200]  # no second run
    log = (codex.town.town.settings.logs_dir / "q" / "round-1.log").read_text()
    assert "429 Too Many Requests" in log
    _counted_once(codex, task_id)
