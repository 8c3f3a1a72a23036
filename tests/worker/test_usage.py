"""Spend: usage per round summed onto task, agent and town; `tt usage`; budgets that hold
an agent before its next round; usage limits that pause an account's agents and resume
by themselves. Driven in-process with a stand-in CLI in Claude Code's output format
(tests/support/fake_structured.py: 12 input, 3 cached, 5 output tokens and $0.0012 a round);
the real CLIs: tests/agent_clis/real/test_usage.py and test_limits.py."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import STRUCTURED, STRUCTURED_ROUND, InProcessWorker, TownFixture, run_task
from tinytown.core.models import TaskState, format_timestamp, utcnow
from tinytown.core.usage_rules import budget_text, cost_usd_text
from tinytown.db import holds
from tinytown.db import usage_store as round_usage

Workers = Callable[..., InProcessWorker]


@pytest.fixture
def town_s(town_factory: Callable[..., TownFixture],
           monkeypatch: pytest.MonkeyPatch) -> TownFixture:
    town = town_factory(extra=STRUCTURED)
    monkeypatch.setenv("FAKE_AGENT_DIR", str(town.records))
    return town


def _runs(town: TownFixture) -> int:
    path = town.records / "structured.log"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_usage_is_summed_per_task_agent_and_town(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("a", cli="structured", role="reviewer", start=False)
    worker = worker_in_process(town_s, "a")
    first = run_task(town_s, worker, "a", "one")
    second = run_task(town_s, worker, "a", "two")
    store = town_s.town.store
    for task_id in (first, second):
        assert store.require_task(task_id).usage == STRUCTURED_ROUND
    assert town_s.town.resolve("a").usage == STRUCTURED_ROUND + STRUCTURED_ROUND
    assert round_usage.town_totals(store) == STRUCTURED_ROUND + STRUCTURED_ROUND
    report = json.loads(town_s.tt("usage", "--json").out)
    assert report["total"]["cost_usd"] == pytest.approx(0.0024)
    assert report["total"]["input_tokens"] == 24 and report["total"]["rounds"] == 2
    by_task = json.loads(town_s.tt("usage", "--by", "task", "--json").out)
    assert {r["key"]: r["output_tokens"] for r in by_task["rows"]} == {first: 5, second: 5}
    by_role = json.loads(town_s.tt("usage", "--by", "role", "--since", "1h", "--json").out)
    assert [(r["key"], r["rounds"]) for r in by_role["rows"]] == [("reviewer", 2)]
    only = json.loads(town_s.tt("usage", "--task", first, "--json").out)
    assert only["total"]["rounds"] == 1
    assert "$0.0012" in town_s.tt("task", "show", first).out
    assert "$0.0024" in town_s.tt("list").out
    rounds = [e for e in town_s.town.events(100) if e["kind"] == "round"]
    assert [e["output_tokens"] for e in rounds] == ["5", "5"]


def test_a_cli_that_reports_nothing_costs_unknown_not_zero(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("q", cli="structured", start=False)
    task_id = run_task(town_s, worker_in_process(town_s, "q"), "q", "talk @nojson")
    usage = town_s.town.store.require_task(task_id).usage
    assert usage is not None and usage.unknown_rounds == 1 and usage.cost_text() == "unknown"
    assert json.loads(town_s.tt("usage", "--json").out)["total"]["cost"] == "unknown"


def test_a_budget_holds_the_agent_before_its_next_round(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    assert town_s.tt("spawn", "b", "--cli", "structured", "--budget", "0.001",
                     "--no-start").code == 0
    assert town_s.tt("spawn", "x", "--budget", "nan", "--no-start").code == 2
    worker = worker_in_process(town_s, "b")
    first = run_task(town_s, worker, "b", "one")  # crosses the budget: it finishes
    assert town_s.task_state(first) == TaskState.COMPLETED
    second = run_task(town_s, worker, "b", "two")
    agent = town_s.town.resolve("b")
    assert agent.state.value == "paused" and agent.hold and "budget" in agent.hold
    assert town_s.task_state(second) == TaskState.ASSIGNED  # its work waits
    assert town_s.town.store.inbox_len(agent.id) == 1
    assert _runs(town_s) == 1  # the CLI did not run for it
    assert "budget" in town_s.tt("status").out
    mailbox = town_s.town.store.peek_inbox("00000000-0000-0000-0000-000000000001")
    assert any("paused" in str(m.body) for m in mailbox)
    assert town_s.tt("budget", "set", "b", "1").code == 0
    assert town_s.tt("resume", "b").code == 0
    assert town_s.town.resolve("b").hold is None
    worker.run_round()
    assert town_s.task_state(second) == TaskState.COMPLETED and _runs(town_s) == 2


def test_a_town_budget_holds_every_agent(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("t", cli="structured", start=False)
    worker = worker_in_process(town_s, "t")
    run_task(town_s, worker, "t", "one")
    assert town_s.tt("budget", "set", "town", "0.001").code == 0
    run_task(town_s, worker, "t", "two")
    hold = town_s.town.resolve("t").hold
    assert hold is not None and hold.startswith("town budget")
    assert town_s.tt("budget", "set", "town", "none").code == 0
    report = json.loads(town_s.tt("budget", "show", "--json").out)
    assert report["town"]["budget_usd"] is None


def test_a_usage_limit_pauses_the_account_and_resumes_after_the_reset(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    town_s.town.spawn_agent("u", cli="structured", start=False)
    town_s.town.spawn_agent("v", cli="structured", start=False)  # the same account
    town_s.town.spawn_agent("w", start=False)  # another CLI: not held
    worker = worker_in_process(town_s, "u")
    other = worker_in_process(town_s, "v")
    worker_in_process(town_s, "w")
    resets = utcnow() + timedelta(seconds=5)
    task_id = run_task(town_s, worker, "u", f"go @limit {format_timestamp(resets)}")
    u, v, w = (town_s.town.resolve(n) for n in "uvw")
    assert town_s.task_state(task_id) == TaskState.ASSIGNED  # not failed: it waits
    assert town_s.town.store.inbox_len(u.id) == 1
    assert (u.state.value, v.state.value, w.state.value) == ("paused", "paused", "idle")
    assert u.hold and "usage limit" in u.hold and u.resume_at is not None
    assert abs((u.resume_at - resets).total_seconds()) < 1
    assert holds.release_due(town_s.town.store, utcnow()) == []  # not yet
    released = holds.release_due(town_s.town.store, resets + timedelta(seconds=1))
    assert sorted(released) == sorted([u.id, v.id])
    assert town_s.town.resolve("u").state.value == "idle"
    worker.run_round()
    assert town_s.task_state(task_id) == TaskState.COMPLETED
    other.run_round()  # nothing waits for it: still idle
    assert town_s.town.resolve("v").state.value == "idle"


def test_concurrent_rounds_add_up_exactly(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    workers = []
    for i in range(4):
        town_s.town.spawn_agent(f"c{i}", cli="structured", start=False)
        workers.append(worker_in_process(town_s, f"c{i}"))
    for i in range(4):
        for n in range(3):
            town_s.town.assign(f"c{i}", f"job {n}")

    def drain(w: InProcessWorker) -> None:
        for _ in range(3):
            w.run_round()

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    totals = round_usage.town_totals(town_s.town.store)
    assert totals.rounds == 12 and totals.input_tokens == 12 * 12
    assert totals.cost_usd == pytest.approx(12 * 0.0012)


def test_a_budget_keeps_the_precision_it_was_given(
    town_s: TownFixture, worker_in_process: Workers,
) -> None:
    """`tt budget set b 0.001` was read back as `$0.00`, and the hold said "spent
    $0.0020 of $0.00": a budget shows its own digits, a spend enough beside it."""
    assert budget_text(0.001) == "$0.001" and budget_text(5) == "$5.00"
    assert budget_text(12.5) == "$12.50" and budget_text(None) == "none"
    assert cost_usd_text(0.0012) == "$0.0012" and cost_usd_text(0.000012) == "$0.000012"
    assert cost_usd_text(0.0012, 0.00001) == "$0.001200" and cost_usd_text(3) == "$3.0000"
    town_s.town.spawn_agent("b", cli="structured", start=False)
    worker = worker_in_process(town_s, "b")
    set_ = town_s.tt("budget", "set", "b", "0.001")
    assert set_.code == 0 and set_.out.strip() == "b: budget $0.001", set_.out
    run_task(town_s, worker, "b", "one")  # $0.0012: crosses it
    run_task(town_s, worker, "b", "two")
    hold = town_s.town.resolve("b").hold
    assert hold is not None and hold.startswith("budget: spent $0.0012 of $0.001 "), hold
    shown = town_s.tt("budget", "show").out
    assert "$0.001 " in shown + " " and "$0.00 " not in shown + " ", shown
    town = town_s.tt("budget", "set", "town", "0.0005")
    assert town.out.strip().endswith("budget $0.0005"), town.out


TOKENS_CLI = f"""
[agent_clis.tokens]
command = "{sys.executable} {Path(__file__).parents[1] / 'support' / 'fake_tokens.py'}"
output = "codex-jsonl"
"""


def test_a_token_budget_holds_a_cli_that_reports_no_cost(
    town_factory: Callable[..., TownFixture], worker_in_process: Workers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A USD budget cannot see a cost nobody reports (Codex, Gemini CLI): setting one over
    such agents warns, and a token budget (150 tokens a round here) holds them."""
    town = town_factory(extra=STRUCTURED + TOKENS_CLI)
    monkeypatch.setenv("FAKE_AGENT_DIR", str(town.records))
    town.town.spawn_agent("cx", cli="tokens", start=False)
    town.town.spawn_agent("cl", cli="structured", start=False)  # reports its cost
    worker = worker_in_process(town, "cx")
    runs = lambda: len((town.records / "tokens.log").read_text().splitlines())  # noqa: E731

    usd = town.tt("budget", "set", "town", "5")
    assert usd.code == 0 and usd.out.strip().endswith("budget $5.00")
    [warning] = usd.err.splitlines()  # one line, naming the agent a USD cap misses
    assert "the cost of cx is unknown" in warning and "--tokens" in warning
    assert json.loads(town.tt("budget", "set", "town", "5", "--json").out)["unpriced"] == ["cx"]
    assert town.tt("budget", "set", "cl", "1").err == ""  # its CLI reports the cost
    assert town.tt("budget", "set", "cx", "--tokens", "0").code == 2
    assert town.tt("budget", "set", "cx", "--tokens", "many").code == 2
    assert town.tt("budget", "set", "cx").code == 2
    capped = town.tt("budget", "set", "cx", "--tokens", "200")
    assert capped.code == 0 and capped.out.strip() == "cx: budget 200 tokens", capped.out
    assert town.town.resolve("cx").budget_tokens == 200

    first = run_task(town, worker, "cx", "one")  # 150 of 200
    second = run_task(town, worker, "cx", "two")  # 300: crosses it, finishes
    assert town.task_state(first) == town.task_state(second) == TaskState.COMPLETED
    third = run_task(town, worker, "cx", "three")
    agent = town.town.resolve("cx")
    assert agent.state.value == "paused" and town.task_state(third) == TaskState.ASSIGNED
    assert agent.hold == ("token budget: spent 300 of 200 tokens (raise it with `tt budget"
                          " set cx --tokens N`, then `tt resume cx`)")
    assert runs() == 2  # its CLI did not run for the third

    # the town's token budget holds it too, and `none` lifts the agent's own
    assert town.tt("budget", "set", "cx", "--tokens", "none").code == 0
    assert town.tt("budget", "set", "town", "--tokens", "400").code == 0
    assert town.tt("resume", "cx").code == 0
    worker.run_round()  # 300 of 400: it runs
    assert town.task_state(third) == TaskState.COMPLETED and runs() == 3
    fourth = run_task(town, worker, "cx", "four")
    hold = town.town.resolve("cx").hold
    assert hold is not None and hold.startswith("town token budget: spent 450 of 400 tokens")
    assert town.task_state(fourth) == TaskState.ASSIGNED and runs() == 3
    report = json.loads(town.tt("budget", "show", "--json").out)
    assert (report["town"]["budget_tokens"], report["town"]["spent_tokens"]) == (400, 450)
    assert report["town"]["budget_usd"] == 5.0  # --tokens alone left it as it was
    [cx] = [a for a in report["agents"] if a["name"] == "cx"]
    assert cx["cost_known"] is False and cx["budget_tokens"] is None
    assert "400 tokens" in town.tt("budget", "show").out
