"""Rate and usage limits as a round meets them: a limit the CLI retried past and
finished is an ordinary round (no pause, no re-run); a round that ended at a limit is
counted all the same, and the re-run of its work is a round of its own, in a log of
its own. Driven in-process with stand-in CLIs (tests/support/fake_retried.py and
tests/support/fake_structured.py); the real Codex is in tests/agent_clis/real/test_codex.py."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from tests.helpers import STRUCTURED, STRUCTURED_ROUND, InProcessWorker, TownFixture
from tinytown.core.models import TaskState, format_timestamp, utcnow
from tinytown.db import holds
from tinytown.db import usage_store as round_usage

RETRIED = f"{sys.executable} {Path(__file__).parents[1] / 'support' / 'fake_retried.py'}"
CLIS = STRUCTURED + f"""
[agent_clis.retried-codex]
command = "{RETRIED} codex"
output = "codex-jsonl"

[agent_clis.retried-aider]
command = "{RETRIED} aider"
output = "aider-text"

[agent_clis.copilot]  # the preset (a session's totals in a usage file), a stand-in CLI
command = "{RETRIED} copilot"
"""
Workers = Callable[..., InProcessWorker]


@pytest.fixture
def town_l(town_factory: Callable[..., TownFixture],
           monkeypatch: pytest.MonkeyPatch) -> TownFixture:
    town = town_factory(extra=CLIS)
    monkeypatch.setenv("FAKE_AGENT_DIR", str(town.records))
    return town


@pytest.mark.parametrize("cli", ["retried-codex", "retried-aider"])
def test_a_limit_the_cli_retried_past_is_an_ordinary_round(
    town_l: TownFixture, worker_in_process: Workers, cli: str,
) -> None:
    town_l.town.spawn_agent("r", cli=cli, start=False)
    worker = worker_in_process(town_l, "r")
    task_id = town_l.town.assign("r", "work through a rate limit")
    worker.run_round()
    task = town_l.town.store.require_task(task_id)
    assert task.state == TaskState.COMPLETED, task.result
    assert "done after a retry" in (task.result or "")
    agent = town_l.town.resolve("r")
    assert (agent.state.value, agent.hold, agent.rounds_completed) == ("idle", None, 1)
    assert town_l.town.store.inbox_len(agent.id) == 0  # nothing left to run again
    assert agent.usage is not None and agent.usage.rounds == 1
    assert agent.usage.output_tokens == 4


def test_a_round_that_ended_at_a_limit_is_counted_and_its_rerun_has_its_own_log(
    town_l: TownFixture, worker_in_process: Workers,
) -> None:
    town_l.town.spawn_agent("u", cli="structured", start=False)
    worker = worker_in_process(town_l, "u")
    resets = utcnow() + timedelta(seconds=2)
    task_id = town_l.town.assign("u", f"go @limit {format_timestamp(resets)}")
    worker.run_round()
    store = town_l.town.store
    agent = town_l.town.resolve("u")
    assert agent.state.value == "paused" and town_l.task_state(task_id) == TaskState.ASSIGNED
    # the limited round's tokens count, on the agent, its task and the town
    assert agent.usage == STRUCTURED_ROUND and store.require_task(task_id).usage == STRUCTURED_ROUND
    assert round_usage.town_totals(store) == STRUCTURED_ROUND
    logs = town_l.town.settings.logs_dir / "u"
    assert "usage limit reached" in (logs / "round-1.log").read_text()
    holds.release_due(store, resets + timedelta(seconds=1))
    worker.run_round()
    assert town_l.task_state(task_id) == TaskState.COMPLETED
    # the re-run is round 2: round 1's log is as it was, each prompt kept
    assert "usage limit reached" not in (logs / "round-2.log").read_text()
    assert "usage limit reached" in (logs / "round-1.log").read_text()
    assert (logs / "round-1.prompt").is_file() and (logs / "round-2.prompt").is_file()
    assert store.require_task(task_id).usage == STRUCTURED_ROUND + STRUCTURED_ROUND
    assert town_l.town.resolve("u").usage == STRUCTURED_ROUND + STRUCTURED_ROUND
    numbers = [e["round"] for e in town_l.town.events(100) if e["kind"] == "round"]
    assert numbers == ["1", "2"]


def test_round_numbers_go_on_after_the_logs_a_dead_worker_left(
    town_l: TownFixture, worker_in_process: Workers,
) -> None:
    """A worker that died mid-round completed nothing, but its round's log is there:
    the next worker's round does not write into it."""
    town_l.town.spawn_agent("d", cli="structured", start=False)
    logs = town_l.town.settings.logs_dir / "d"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "round-1.log").write_text("what the dead worker's CLI wrote\n")
    worker = worker_in_process(town_l, "d")
    task_id = town_l.town.assign("d", "one")
    worker.run_round()
    assert town_l.task_state(task_id) == TaskState.COMPLETED
    assert (logs / "round-1.log").read_text() == "what the dead worker's CLI wrote\n"
    assert "round 2 of d" in (logs / "round-2.log").read_text()


def test_a_limited_round_of_a_cli_that_reports_session_totals_is_counted_once(
    town_l: TownFixture, worker_in_process: Workers,
) -> None:
    """Copilot reports a continued session's totals: the round after a limited one
    counts from the totals the limited round left, not from before it."""
    town_l.town.spawn_agent("c", cli="copilot", start=False)
    worker = worker_in_process(town_l, "c")
    first = town_l.town.assign("c", "first")
    worker.run_round()  # a session of 100 input and 10 output tokens
    assert town_l.task_state(first) == TaskState.COMPLETED
    resets = utcnow() + timedelta(seconds=1)
    task_id = town_l.town.assign("c", f"second @limit {format_timestamp(resets)}")
    worker.run_round()  # the same session: 200 and 20 in all, then the limit
    assert town_l.town.resolve("c").state.value == "paused"
    holds.release_due(town_l.town.store, resets + timedelta(seconds=1))
    worker.run_round()  # the same session again: 300 and 30
    assert town_l.task_state(task_id) == TaskState.COMPLETED
    agent = town_l.town.resolve("c")
    assert agent.usage is not None
    assert (agent.usage.input_tokens, agent.usage.output_tokens, agent.usage.rounds) == (
        300, 30, 3)
    task = town_l.town.store.require_task(task_id).usage
    assert task is not None and (task.input_tokens, task.rounds) == (200, 2)
