"""The task graph's writes (tinytown/db/graph.py, tinytown/db/dependency_store.py) against a
real Redis: a task blocked until its dependencies are completed, released in the same
transaction as the completion, exactly once; refusals that write nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import TownFixture, key_snapshot
from tinytown.core import keys
from tinytown.core.errors import DependencyCycle, InvalidTransition, TaskNotFound
from tinytown.core.models import Task, TaskState
from tinytown.db import dependency_store, graph, rounds
from tinytown.db import task_writes as tasks
from tinytown.ops.facade import Town


def _assigns(town: TownFixture, agent_id: str) -> list[str]:
    """The task ids of the task_assign messages in the agent's inbox, in order."""
    return [str(getattr(m.body, "task_id", "")) for m in town.town.store.peek_inbox(agent_id)
            if m.type == "task_assign"]


@pytest.fixture
def agent_id(town: TownFixture) -> str:
    """An agent recorded with no worker: its inbox only fills."""
    return town.town.spawn_agent("w", start=False).id


def test_blocked_until_the_last_dependency_completes(town: TownFixture, agent_id: str) -> None:
    t = town.town
    p1 = t.assign("w", "first")
    p2 = t.assign("w", "second")
    child = t.assign("w", "after both", after=[p1[:8], p2])
    got = t.task(child)
    assert got.state == TaskState.BLOCKED and got.after == [p1, p2]
    assert got.blocked_reason is None
    assert _assigns(town, agent_id) == [p1, p2]  # not in the inbox
    assert t.redis.smembers(keys.dependents(t.name, p1)) == {child}
    t.complete_task(p1, "one")
    assert t.task(child).state == TaskState.BLOCKED
    assert _assigns(town, agent_id) == [p1, p2]
    t.complete_task(p2, "two")
    assert t.task(child).state == TaskState.ASSIGNED
    assert _assigns(town, agent_id) == [p1, p2, child]
    assert not t.redis.exists(keys.dependents(t.name, p1), keys.dependents(t.name, p2))


def test_a_completed_dependency_is_satisfied_at_once(town: TownFixture, agent_id: str) -> None:
    t = town.town
    done = t.assign("w", "done already")
    t.complete_task(done, "ok")
    child = t.assign("w", "then this", after=[done])
    assert t.task(child).state == TaskState.ASSIGNED
    assert _assigns(town, agent_id)[-1] == child


def test_completing_twice_releases_once(town: TownFixture, agent_id: str) -> None:
    t = town.town
    parent = t.assign("w", "parent")
    child = t.assign("w", "child", after=[parent])
    t.complete_task(parent, "ok")
    with pytest.raises(InvalidTransition):
        t.complete_task(parent, "again")
    assert _assigns(town, agent_id) == [parent, child]


def test_a_round_recorded_again_after_a_kill_releases_once(town: TownFixture,
                                                           agent_id: str) -> None:
    """Rounds are at-least-once: the record step of a round whose worker died after it
    committed runs again on the re-delivered job. The child is queued once."""
    t = town.town
    parent = t.assign("w", "parent")
    child = t.assign("w", "child", after=[parent])
    outcome = rounds.Outcome(number=1, ok=True, output="built it", error="", context="{}",
                             context_rounds=1)
    first: list[Task] = []
    rounds.finish(t.store, agent_id, parent, outcome, released=first)
    again: list[Task] = []
    rounds.finish(t.store, agent_id, parent, outcome, released=again)
    assert [x.id for x in first] == [child] and again == []
    assert _assigns(town, agent_id).count(child) == 1
    assert t.task(parent).result == "built it"


def test_fan_in_completed_at_once_from_two_processes_releases_once(
        town: TownFixture, agent_id: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The two last dependencies completed at the same moment (a round and a person):
    the other completion commits between this one's reads and its MULTI. Each
    transaction watches the other's task, so this one reads again and releases the
    child, once; it is never left blocked."""
    t = town.town
    t.spawn_agent("v", start=False)
    p1, p2 = t.assign("w", "left"), t.assign("v", "right")  # two agents: nothing shared
    child = t.assign("w", "join", after=[p1, p2])
    other = Town.connect(town.root)  # another process, as it were
    real, fired = graph.unfinished, []

    def meanwhile(task: Task, deps: Any) -> list[str]:
        if not fired:  # once: the person completes p2 while the round completes p1
            fired.append(True)
            tasks.finish_task(other.store, p2, TaskState.COMPLETED, "by hand")
        return real(task, deps)

    monkeypatch.setattr(graph, "unfinished", meanwhile)
    try:
        outcome = rounds.Outcome(number=1, ok=True, output="ok", error="", context="{}",
                                 context_rounds=1)
        rounds.finish(t.store, agent_id, p1, outcome)
    finally:
        other.close()
    assert fired
    assert t.task(child).state == TaskState.ASSIGNED
    assert _assigns(town, agent_id).count(child) == 1


def test_unknown_dependency_is_refused_and_nothing_written(town: TownFixture,
                                                           agent_id: str) -> None:
    t = town.town
    known = t.assign("w", "known")
    before = key_snapshot(town)
    with pytest.raises(TaskNotFound):
        t.assign("w", "never", after=[known, "0123abcd"])
    with pytest.raises(TaskNotFound):  # a well-formed id of no task
        dependency_store.submit(t.store, Task("x", assigned_to=agent_id), [known, Task("n").id])
    assert key_snapshot(town) == before


def test_a_cycle_is_refused_naming_it_and_nothing_written(town: TownFixture,
                                                         agent_id: str) -> None:
    t = town.town
    root = t.assign("w", "root")
    a = t.assign("w", "a", after=[root])
    b = t.assign("w", "b", after=[a])
    c = t.assign("w", "c", after=[b])
    before = key_snapshot(town)
    with pytest.raises(DependencyCycle) as refused:
        t.add_dependencies(a, [c[:8]])
    assert f"{a[:8]} -> {c[:8]} -> {b[:8]} -> {a[:8]}" in str(refused.value)
    with pytest.raises(DependencyCycle):
        t.add_dependencies(a, [a])
    assert key_snapshot(town) == before
    # a dependency that makes no cycle is added; one already completed blocks nothing
    extra = t.assign("w", "extra")
    assert t.add_dependencies(c, [extra]).after == [b, extra]
    assert t.redis.sismember(keys.dependents(t.name, extra), c)


def test_failed_parent_leaves_child_blocked_with_reason_then_retry(
        town: TownFixture, agent_id: str) -> None:
    t = town.town
    other = t.spawn_agent("v", start=False).id
    parent = t.assign("w", "parent")
    child = t.assign("v", "child", after=[parent])
    t.fail_task(parent, "the build broke\nbadly")
    got = t.task(child)
    assert got.state == TaskState.BLOCKED
    assert got.blocked_reason == f"{parent[:8]} failed: the build broke badly"
    retried = t.retry_task(parent[:8], to="v")
    assert retried.state == TaskState.ASSIGNED and retried.assigned_to == other
    assert retried.result is None and retried.completed_at is None
    assert t.task(child).blocked_reason is None  # waits for it again
    assert _assigns(town, other) == [parent]
    t.complete_task(parent, "fixed")
    assert t.task(child).state == TaskState.ASSIGNED
    assert _assigns(town, other) == [parent, child]
    with pytest.raises(InvalidTransition):
        t.retry_task(parent)  # completed: nothing to retry


def test_a_dependency_on_a_failed_task_is_blocked_with_reason_then_unblock(
        town: TownFixture, agent_id: str) -> None:
    t = town.town
    failed = t.assign("w", "doomed")
    t.cancel_task(failed)
    waiting = t.assign("w", "still running")
    child = t.assign("w", "child", after=[failed, waiting])
    got = t.task(child)
    assert got.state == TaskState.BLOCKED
    assert got.blocked_reason == f"{failed[:8]} was cancelled"
    with pytest.raises(InvalidTransition):
        t.unblock_task(waiting)  # not blocked
    unblocked = t.unblock_task(child)
    assert unblocked.state == TaskState.BLOCKED and unblocked.after == [waiting]
    assert unblocked.blocked_reason is None
    with pytest.raises(InvalidTransition):
        t.unblock_task(child)  # nothing failed now: it waits for `waiting`
    t.complete_task(waiting, "ok")
    assert t.task(child).state == TaskState.ASSIGNED
    assert _assigns(town, agent_id).count(child) == 1


def test_unblock_dispatches_when_nothing_else_is_pending(town: TownFixture,
                                                         agent_id: str) -> None:
    t = town.town
    parent = t.assign("w", "parent")
    child = t.assign("w", "child", after=[parent])
    t.fail_task(parent, "no")
    assert t.unblock_task(child).state == TaskState.ASSIGNED
    assert _assigns(town, agent_id) == [parent, child]
    assert not t.redis.sismember(keys.dependents(t.name, parent), child)


def test_role_tasks_wait_then_go_to_the_role_queue(town: TownFixture, agent_id: str) -> None:
    t = town.town
    parent = t.assign("w", "parent")
    child, _live = t.assign_to_role("worker", Task("for the role"), after=[parent])
    assert child.state == TaskState.BLOCKED and child.role == "worker"
    assert not t.redis.zscore(keys.role_pending(t.name), child.id)
    t.complete_task(parent, "ok")
    assert t.task(child.id).state == TaskState.PENDING
    assert t.redis.zscore(keys.role_pending(t.name), child.id) is not None


def test_cancelling_a_blocked_task(town: TownFixture, agent_id: str) -> None:
    t = town.town
    parent = t.assign("w", "parent")
    child = t.assign("w", "child", after=[parent])
    grandchild = t.assign("w", "grandchild", after=[child])
    assert t.cancel_task(child).state == TaskState.CANCELLED
    assert not t.redis.sismember(keys.dependents(t.name, parent), child)
    assert t.task(grandchild).blocked_reason == f"{child[:8]} was cancelled"
    t.complete_task(parent, "ok")
    assert _assigns(town, agent_id) == [parent]  # the cancelled child stays cancelled
    # retried, for a role this time: its dependency is done, so it is queued at once,
    # and the grandchild waits for it again
    retried = t.retry_task(child, role="worker")
    assert retried.state == TaskState.PENDING and retried.role == "worker"
    assert retried.assigned_to is None
    assert t.task(grandchild).blocked_reason is None
    t.complete_task(child, "done")
    assert t.task(grandchild).state == TaskState.ASSIGNED


def test_a_cancelled_blocked_task_retried_waits_again(town: TownFixture,
                                                      agent_id: str) -> None:
    t = town.town
    parent = t.assign("w", "parent")
    child = t.assign("w", "child", after=[parent])
    t.cancel_task(child)
    assert t.retry_task(child).state == TaskState.BLOCKED
    assert t.redis.sismember(keys.dependents(t.name, parent), child)
    t.complete_task(parent, "ok")
    assert _assigns(town, agent_id) == [parent, child]


def test_old_records_read_with_the_defaults() -> None:
    old = ('{"id": "9d2b7c3a-1b2c-4d5e-8f90-a1b2c3d4e5f6", "description": "d",'
           ' "state": "assigned", "assigned_to": null, "created_at": "2026-11-24T22:21:33Z",'
           ' "updated_at": "2026-11-24T22:21:33Z", "completed_at": null, "result": null,'
           ' "parent_id": null, "role": "reviewer"}')
    task = Task.from_json(old)
    assert task.after == [] and task.blocked_reason is None and task.role == "reviewer"
    wire = task.to_wire()
    assert "after" not in wire and "blocked_reason" not in wire and "priority" not in wire
    assert wire["role"] == "reviewer"
    assert TaskState("blocked") == TaskState.BLOCKED and not TaskState.BLOCKED.is_terminal


def test_reclaim_keeps_a_blocked_task_blocked_for_its_new_agent(
        town: TownFixture, agent_id: str) -> None:
    """`tt reclaim --to` moves a stopped agent's work; a blocked task among it is in no
    inbox: it goes to the new agent still blocked, and is dispatched there once its
    dependency completes."""
    t = town.town
    other = t.spawn_agent("v", start=False).id
    parent = t.assign("v", "parent")
    child = t.assign("w", "child", after=[parent])
    t.store.update_agent(agent_id, lambda a: setattr(a, "state", "stopped"))
    t.reclaim(source="w", to_agent="v")
    moved = t.task(child)
    assert moved.state == TaskState.BLOCKED and moved.assigned_to == other
    assert child not in _assigns(town, other)
    t.complete_task(parent, "ok")
    assert _assigns(town, other).count(child) == 1


def test_a_dependents_key_of_another_type_is_set_aside(town: TownFixture,
                                                       agent_id: str) -> None:
    """A foreign value where the dependents set goes is moved aside (kept), never
    leaving a MULTI half written: the task is recorded blocked, and released."""
    t = town.town
    parent = t.assign("w", "parent")
    t.redis.set(keys.dependents(t.name, parent), "not a set")
    child = t.assign("w", "child", after=[parent])
    assert t.task(child).state == TaskState.BLOCKED
    assert t.redis.smembers(keys.dependents(t.name, parent)) == {child}
    assert any("deadletter:dependents" in k for k in town.town_keys())
    t.complete_task(parent, "ok")
    assert _assigns(town, agent_id) == [parent, child]


def test_a_task_given_with_its_after_set_is_blocked_too(town: TownFixture,
                                                        agent_id: str) -> None:
    t = town.town
    parent = t.assign("w", "parent")
    child = t.assign("w", Task("child", after=[parent]))
    queued, _ = t.assign_to_role("worker", Task("for the role", after=[parent]))
    assert t.task(child).state == TaskState.BLOCKED
    assert queued.state == TaskState.BLOCKED
