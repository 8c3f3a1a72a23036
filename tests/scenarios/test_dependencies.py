"""Dependencies between tasks with real workers (`tt spawn`, the fake agent CLI): a
graph fans out and in, each task starting after its dependencies completed, their
results in its prompt; a failed dependency blocks until `tt task retry` or `tt task
unblock`; bad input is one line on stderr."""

from __future__ import annotations

import pytest

from tests.helpers import TownFixture, one_line_error
from tinytown.core.models import Task, TaskState

pytestmark = pytest.mark.timeout(120)


def _assign(town: TownFixture, *args: str) -> str:
    r = town.tt("assign", *args)
    assert r.code == 0, r.err
    return r.out.strip()


def _prompt_of(town: TownFixture, task_id: str) -> str:
    """The prompt of the round that ran the task (the fake agent's records)."""
    runs = [run for run in town.runs() if run[2] == task_id]
    assert runs, f"no round ran {task_id}"
    agent, number = runs[-1][0], runs[-1][1]
    return (town.records / f"{agent}-{number}.prompt").read_text()


def _task(town: TownFixture, task_id: str) -> Task:
    return town.town.store.require_task(task_id)


def test_fan_out_and_fan_in_run_in_order(town: TownFixture) -> None:
    for name in ("a", "b", "c"):
        assert town.tt("spawn", name).code == 0
    for name in ("a", "b", "c"):
        town.wait_state(name, "idle")
    base = _assign(town, "a", "build the base\n@sleep 4")
    left = _assign(town, "b", "the left part", "--after", base[:8])
    assert _task(town, left).state == TaskState.BLOCKED
    right = _assign(town, "c", "the right part", "--after", base)
    join = _assign(town, "a", "join them", "--after", f"{left[:8]},{right[:8]}")
    town.wait_task(join, TaskState.COMPLETED, timeout=60)
    b, l_, r_, j = (_task(town, i) for i in (base, left, right, join))
    assert all(t.state == TaskState.COMPLETED for t in (b, l_, r_, j))
    assert b.completed_at and l_.completed_at and r_.completed_at
    assert l_.started_at and r_.started_at and j.started_at
    assert l_.started_at >= b.completed_at and r_.started_at >= b.completed_at
    assert j.started_at >= max(l_.completed_at, r_.completed_at)
    assert sum(run[2] == join for run in town.runs()) == 1  # dispatched once
    prompt = _prompt_of(town, join)
    assert f"### Task {left} (completed, by b): the left part" in prompt
    assert f"### Task {right} (completed, by c): the right part" in prompt
    assert "fake agent b round" in prompt and "fake agent c round" in prompt
    assert f"### Task {base}" in _prompt_of(town, left)


def test_a_completed_dependency_does_not_block(town: TownFixture) -> None:
    assert town.tt("spawn", "a").code == 0
    town.wait_state("a", "idle")
    first = _assign(town, "a", "first")
    town.wait_task(first, TaskState.COMPLETED, timeout=30)
    second = _assign(town, "a", "second", "--after", first)
    assert _task(town, second).state != TaskState.BLOCKED
    town.wait_task(second, TaskState.COMPLETED, timeout=30)


def test_failed_dependency_blocks_until_retry_or_unblock(town: TownFixture) -> None:
    assert town.tt("spawn", "a").code == 0
    assert town.tt("spawn", "b").code == 0
    assert town.tt("spawn", "idle", "--no-start").code == 0
    town.wait_state("a", "idle")
    town.wait_state("b", "idle")
    # a parent that a worker's round fails: the child stays blocked, with the reason
    broken = _assign(town, "a", "this one breaks\n@exit 3")
    town.wait_task(broken, TaskState.FAILED, timeout=30)
    child = _assign(town, "b", "needs the broken one", "--after", broken[:8])
    got = _task(town, child)
    assert got.state == TaskState.BLOCKED
    assert got.blocked_reason and got.blocked_reason.startswith(f"{broken[:8]} failed:")
    shown = town.tt("task", "show", child[:8]).out
    assert "blocked" in shown and f"{broken[:8]} (failed)" in shown
    assert "blocked_reason" in shown
    listed = town.tt("task", "list").out
    assert "AFTER" in listed and broken[:8] in listed
    assert f"blocked_task     {child[:8]} after {broken[:8]}" in town.tt("show", "b").out
    waited = town.tt("task", "wait", child, "--timeout", "1")
    assert waited.code == 124  # a blocked task is waited on
    # unblock: it goes on without the failed dependency
    r = town.tt("task", "unblock", child[:8])
    assert r.code == 0, r.err
    town.wait_task(child, TaskState.COMPLETED, timeout=30)
    # a parent failed by hand, retried on another agent: its child follows it
    parked = _assign(town, "idle", "never runs here")
    assert town.tt("task", "fail", parked, "--error", "wrong agent").code == 0
    follower = _assign(town, "b", "after the retried one", "--after", parked)
    assert _task(town, follower).blocked_reason == f"{parked[:8]} failed: wrong agent"
    r = town.tt("task", "retry", parked[:8], "--to", "a")
    assert r.code == 0, r.err
    assert _task(town, follower).blocked_reason is None
    town.wait_task(follower, TaskState.COMPLETED, timeout=30)
    p, f = _task(town, parked), _task(town, follower)
    assert p.state == TaskState.COMPLETED and p.assigned_to == town.town.resolve("a").id
    assert p.completed_at and f.started_at and f.started_at >= p.completed_at


def test_bad_input_is_one_line_and_writes_nothing(town: TownFixture) -> None:
    assert town.tt("spawn", "w", "--no-start").code == 0
    known = _assign(town, "w", "known")
    before = town.tt("task", "list", "--json").out
    err = one_line_error(town.tt("assign", "w", "x", "--after", f"{known},0000dead"), 1)
    assert "0000dead" in err
    one_line_error(town.tt("assign", "--role", "worker", "x", "--after", "0000dead"), 1)
    one_line_error(town.tt("assign", "w", "x", "--after", ","), 2)
    assert town.tt("task", "list", "--json").out == before
    one_line_error(town.tt("task", "retry", known), 1)  # assigned: nothing to retry
    one_line_error(town.tt("task", "unblock", known), 1)  # not blocked
    one_line_error(town.tt("task", "retry", known, "--to", "w", "--role", "worker"), 2)
    one_line_error(town.tt("task", "retry", "0000dead"), 1)


def test_a_released_task_wakes_its_cold_agent(town: TownFixture) -> None:
    """The worker whose round completed the dependency starts the cold agent's worker
    (no host daemon), as `tt assign` would for new work."""
    assert town.tt("spawn", "a").code == 0
    assert town.tt("spawn", "sleeper", "--cold").code == 0
    town.wait_state("a", "idle")
    assert town.agent_state("sleeper") == "cold"
    parent = _assign(town, "a", "first this\n@sleep 1")
    child = _assign(town, "sleeper", "then this", "--after", parent)
    assert _task(town, child).state == TaskState.BLOCKED
    assert town.agent_state("sleeper") == "cold"  # blocked work wakes nobody
    town.wait_task(child, TaskState.COMPLETED, timeout=60)
    assert _task(town, child).assigned_to == town.town.resolve("sleeper").id
