"""Spend with the real CLIs against their stubs: the tokens each task used are exactly
what the stub reported for its requests, summed per task, agent and town; a budget
holds the agent before the task it cannot afford; a usage limit pauses the account's
agents and they carry on by themselves after the reset (the supervisor resumes them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from tests.conftest import InProcessWorker, TownFixture, wait_until
from tests.stubs._base import ApiError, Text
from tests.stubs.test_presets import Preset, preset_town
from tinytown.core.models import TaskState, format_timestamp, utcnow
from tinytown.db import usage as round_usage

pytestmark = pytest.mark.realcli
CODEX_PRICES = "".join(f"[prices.{cli}]\ninput = 1.25\ncached_input = 0.125\noutput = 10\n"
                       for cli in ("codex", "copilot", "opencode", "qwen", "cline"))
# Against a 429 on every request (no retry-after) each of these went on retrying past
# the round's 60 s time limit (2026-12: opencode 1.18.33, Qwen Code 0.15.10, Cline 3.0.65),
# so the round timed out instead of ending at the limit: not checked yet
LIMIT_NOT_CHECKED = {"opencode", "qwen", "cline"}


# the presets that report tokens
@pytest.fixture(params=["claude", "codex", "copilot", "opencode", "qwen", "cline"])
def preset(request: pytest.FixtureRequest, town_factory: Callable[..., TownFixture],
           worker_in_process: Callable[..., InProcessWorker],
           monkeypatch: pytest.MonkeyPatch) -> Iterator[Preset]:
    # Codex reports tokens, not money: a price table turns them into a cost
    yield from preset_town(request.param, town_factory, worker_in_process, monkeypatch,
                           extra=CODEX_PRICES)


def _stub_tokens(preset: Preset, start: int, end: int | None = None) -> dict[str, int]:
    """What the stub reported for its main requests [start:end], as Tinytown counts it."""
    got = {"input_tokens": 0, "output_tokens": 0}
    for rec in preset.stub.main_requests[start:end]:
        assert rec.usage is not None
        got["input_tokens"] += rec.usage["input_tokens"]
        got["output_tokens"] += rec.usage["output_tokens"]
    return got


def test_the_tokens_of_each_task_are_the_stubs_summed(preset: Preset) -> None:
    preset.stub.push(Text("first done"), Text("second done"))
    worker = preset.agent("a")
    state, _, first = preset.task(worker, "a", "one")
    after_first = len(preset.stub.main_requests)
    state2, _, second = preset.task(worker, "a", "two")  # a resumed session (codex: totals)
    assert (state, state2) == ("completed", "completed")
    store = preset.town.town.store
    per_task = [_stub_tokens(preset, 0, after_first), _stub_tokens(preset, after_first)]
    for task_id, expected in zip((first, second), per_task, strict=True):
        usage = store.require_task(task_id).usage
        assert usage is not None
        assert (usage.input_tokens + usage.cached_input_tokens, usage.output_tokens) == \
            (expected["input_tokens"], expected["output_tokens"]), task_id
    everything = _stub_tokens(preset, 0)
    agent = preset.town.town.resolve("a").usage
    town = round_usage.town_totals(store)
    report = json.loads(preset.town.tt("usage", "--json").out)["total"]
    for usage in (agent, town):
        assert usage is not None
        assert usage.input_tokens + usage.cached_input_tokens == everything["input_tokens"]
        assert usage.output_tokens == everything["output_tokens"]
    assert report["output_tokens"] == everything["output_tokens"]
    tasks = [store.require_task(t).usage for t in (first, second)]
    assert all(u is not None and u.cost_usd > 0 for u in tasks)  # priced by Claude Code,
    assert report["cost_usd"] == pytest.approx(sum(u.cost_usd for u in tasks if u))
    if preset.name != "claude":  # or by [prices.<cli>], USD per million tokens
        expected = (everything["input_tokens"] * 1.25 + everything["output_tokens"] * 10) / 1e6
        assert report["cost_usd"] == pytest.approx(expected)


def test_a_budget_holds_the_agent_before_the_task_it_cannot_afford(preset: Preset) -> None:
    preset.stub.push(Text("first done"), Text("second done"))
    worker = preset.agent("b")
    assert preset.town.tt("budget", "set", "b", "0.000001").code == 0
    assert preset.task(worker, "b", "one")[0] == "completed"  # crosses the budget
    state, _, second = preset.task(worker, "b", "two")
    agent = preset.town.town.resolve("b")
    assert state == "assigned" and agent.state.value == "paused"
    assert agent.hold is not None and agent.hold.startswith("budget")
    assert len(preset.stub.main_requests) == 1
    assert preset.town.tt("budget", "set", "b", "100").code == 0
    assert preset.town.tt("resume", "b").code == 0
    worker.run_round()
    assert preset.town.task_state(second) == TaskState.COMPLETED
    assert len(preset.stub.main_requests) == 2  # two task conversations, no more


def test_a_usage_limit_pauses_the_account_until_it_resets(preset: Preset) -> None:
    if preset.name in LIMIT_NOT_CHECKED:
        pytest.skip(f"{preset.name} retries a 429 past the round's time limit: not checked")
    resets = utcnow() + timedelta(seconds=5)
    message = f"usage limit reached, resets at {format_timestamp(resets)}"
    # Codex retries a 429 and then names no reset time: the backoff applies
    preset.town.town.settings.budget.usage_limit_backoff_secs = 5
    # Copilot retries a 429 for ~30 s, but gives up at once on a long retry-after
    wait = {"retry-after": "3600"} if preset.name == "copilot" else {}
    preset.stub.push(ApiError(429, message, headers=wait, times=None))
    if preset.name == "claude":  # the environment is the fixture's (monkeypatched)
        os.environ["CLAUDE_CODE_MAX_RETRIES"] = "0"
    worker = preset.agent("u")
    other = preset.agent("v")  # the same CLI: the same account
    town = preset.town
    supervisor = subprocess.Popen([sys.executable, "-m", "tinytown.supervisor", "--town",
                                   str(town.root)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    try:
        state, result, task_id = preset.task(worker, "u", "work until the limit")
        assert state == "assigned", result  # not failed: it waits for the reset
        u, v = town.town.resolve("u"), town.town.resolve("v")
        assert (u.state.value, v.state.value) == ("paused", "paused"), (u.hold, v.hold)
        assert u.hold is not None and "usage limit" in u.hold
        preset.stub.clear_script()  # the provider answers again
        preset.stub.push(Text("done after the reset"))
        wait_until(lambda: town.agent_state("u") == "idle", 30, "the supervisor to resume u")
        assert utcnow() >= resets - timedelta(seconds=1)
        assert town.agent_state("v") == "idle"
        worker.run_round()
        assert town.task_state(task_id) == TaskState.COMPLETED
        assert other.agent_id != worker.agent_id
    finally:
        supervisor.terminate()
        supervisor.wait(10)
