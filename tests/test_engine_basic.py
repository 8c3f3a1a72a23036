"""Agents as real Celery workers: spawn, rounds, task lifecycle."""

from __future__ import annotations

from tests.conftest import TownFixture, wait_until
from tinytown import keys
from tinytown.models import TaskState


def test_spawned_agent_runs_an_assigned_task(town: TownFixture) -> None:
    r = town.tt("spawn", "alice")
    assert r.code == 0, r.err
    town.wait_state("alice", "idle")
    task_id = town.tt("assign", "alice", "write the README").out.strip()
    wait_until(lambda: town.town.store.get_task(task_id).state == TaskState.COMPLETED,
               20, "the task to complete")
    wait_until(lambda: town.town.resolve("alice").rounds_completed == 1, 10, "the round's end")
    task = town.town.store.get_task(task_id)
    assert "fake agent alice round 1 did" in (task.result or "")
    assert task.started_at is not None and task.completed_at is not None
    agent = town.town.resolve("alice")
    assert agent.tasks_completed == 1 and agent.rounds_completed == 1
    assert agent.current_task is None
    prompt = (town.records / "alice-1.prompt").read_text()
    assert "write the README" in prompt
    done = town.town.store.peek_inbox(keys.SUPERVISOR_ID)
    assert [m.type for m in done] == ["task_done"]
    assert done[0].body.task_id == task_id  # type: ignore[union-attr]
