"""Usage with the real CLIs against their stubs: the tokens each task used are what the
stub reported for its requests, summed per task, agent and town, with a cost (the CLI's
own, or `[prices.<cli>]`); a budget holds the agent before the task it cannot afford."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from tests.agent_clis.real.clis import BUDGET, USAGE, params
from tests.agent_clis.real.towns import Preset, preset_town
from tests.helpers import InProcessWorker, TownFixture
from tests.stubs._base import Recorded, Text
from tinytown.agent_clis import registry
from tinytown.core.models import TaskState
from tinytown.db import usage_store as round_usage

pytestmark = pytest.mark.realcli
PRICED = ("codex", "gemini", "copilot", "opencode", "qwen", "cline")
PRICES = "".join(f"[prices.{cli}]\ninput = 1.25\ncached_input = 0.125\noutput = 10\n"
                 for cli in PRICED)
# aider prints its tokens rounded ("Tokens: 2.4k sent, 16 received"): counted within this
ROUNDED = {"aider": 0.05}
COUNTS_SIDE = {"gemini"}


@pytest.fixture
def preset(request: pytest.FixtureRequest, town_factory: Callable[..., TownFixture],
           worker_in_process: Callable[..., InProcessWorker],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Preset]:
    """A CLI that reports tokens but no money gets a price table: a cost from tokens."""
    yield from preset_town(request.param, town_factory, worker_in_process, monkeypatch,
                           extra=PRICES)


def _tokens(rec: Recorded) -> tuple[int, int]:
    """(input, output) the stub reported for one request, in any API's words."""
    usage = rec.usage
    assert usage is not None
    if "promptTokenCount" in usage:  # Gemini's (cached input included)
        return usage["promptTokenCount"], usage["candidatesTokenCount"] + \
            usage.get("thoughtsTokenCount", 0)
    cached = usage.get("cache_read_input_tokens", 0) + \
        usage.get("cache_creation_input_tokens", 0)  # Anthropic's input is uncached
    return usage["input_tokens"] + cached, usage["output_tokens"]


def _counted(preset: Preset) -> list[Recorded]:
    """The requests whose tokens the CLI counts: its main ones (Gemini CLI: its model
    router's side requests too)."""
    return [r for r in preset.stub.requests if r.kind == "main" or (
        preset.name in COUNTS_SIDE and r.kind == "side" and r.usage)]


def _stub_tokens(preset: Preset, start: int, end: int | None = None) -> tuple[int, int]:
    """What the stub reported for the counted requests [start:end], summed."""
    pairs = [_tokens(r) for r in _counted(preset)[start:end]]
    return sum(p[0] for p in pairs), sum(p[1] for p in pairs)


def _close(name: str, got: int, want: int) -> bool:
    return abs(got - want) <= want * ROUNDED.get(name, 0)


@pytest.mark.parametrize("preset", params(USAGE), indirect=True)
def test_the_tokens_of_each_task_are_the_stubs_summed(preset: Preset) -> None:
    preset.stub.push(Text("first done"), Text("second done"))
    worker = preset.agent("a")
    state, _, first = preset.task(worker, "a", "one")
    after_first = len(_counted(preset))
    state2, _, second = preset.task(worker, "a", "two")  # a resumed session (codex: totals)
    assert (state, state2) == ("completed", "completed")
    store = preset.town.town.store
    per_task = [_stub_tokens(preset, 0, after_first), _stub_tokens(preset, after_first)]
    for task_id, (inp, out) in zip((first, second), per_task, strict=True):
        usage = store.require_task(task_id).usage
        assert usage is not None
        assert _close(preset.name, usage.input_tokens + usage.cached_input_tokens, inp), \
            (task_id, usage, inp)
        assert _close(preset.name, usage.output_tokens, out), (task_id, usage, out)
    inp, out = _stub_tokens(preset, 0)
    agent = preset.town.town.resolve("a").usage
    town = round_usage.town_totals(store)
    report = json.loads(preset.town.tt("usage", "--json").out)["total"]
    for usage in (agent, town):
        assert usage is not None
        assert _close(preset.name, usage.input_tokens + usage.cached_input_tokens, inp)
        assert _close(preset.name, usage.output_tokens, out)
    assert _close(preset.name, report["output_tokens"], out)
    tasks = [store.require_task(t).usage for t in (first, second)]
    assert all(u is not None and u.cost_usd > 0 for u in tasks)  # priced by the CLI,
    assert report["cost_usd"] == pytest.approx(sum(u.cost_usd for u in tasks if u))
    found = registry.of(preset.name)
    if found is not None and not found.cli.reports_cost:  # or by [prices.<cli>]
        assert preset.name in PRICED
        assert report["cost_usd"] == pytest.approx((inp * 1.25 + out * 10) / 1e6)


@pytest.mark.parametrize("preset", params(BUDGET), indirect=True)
def test_a_budget_holds_the_agent_before_the_task_it_cannot_afford(preset: Preset) -> None:
    preset.stub.push(Text("first done"), Text("second done"))
    worker = preset.agent("b")
    assert preset.town.tt("budget", "set", "b", "0.000001").code == 0
    assert preset.task(worker, "b", "one")[0] == "completed"  # crosses the budget
    requests = len(preset.stub.main_requests)
    state, _, second = preset.task(worker, "b", "two")
    agent = preset.town.town.resolve("b")
    assert state == "assigned" and agent.state.value == "paused"
    assert agent.hold is not None and agent.hold.startswith("budget")
    assert len(preset.stub.main_requests) == requests  # held before its CLI ran
    assert preset.town.tt("budget", "set", "b", "100").code == 0
    assert preset.town.tt("resume", "b").code == 0
    worker.run_round()
    assert preset.town.task_state(second) == TaskState.COMPLETED
    assert len(preset.stub.main_requests) == requests + 1  # the second task's, no more
