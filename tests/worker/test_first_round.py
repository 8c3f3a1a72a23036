"""An agent's round from `tt spawn` and `tt assign` to a recorded task: the round runs
in-process (the real WorkerRuntime, Redis and agent CLI; real worker processes run
in tests/ops/test_control.py, tests/supervisor/ and tests/cli/test_pipelines.py)."""

from __future__ import annotations

from collections.abc import Callable

from tests.helpers import InProcessWorker, TownFixture
from tinytown.core import keys
from tinytown.core.models import TaskState


def test_spawned_agent_runs_an_assigned_task(
    town: TownFixture, worker_in_process: Callable[..., InProcessWorker]
) -> None:
    r = town.tt("spawn", "alice", "--no-start")
    assert r.code == 0, r.err
    worker = worker_in_process(town, "alice")
    assert town.agent_state("alice") == "idle"
    task_id = town.tt("assign", "alice", "write the README").out.strip()
    worker.run_round()
    assert town.task_state(task_id) == TaskState.COMPLETED
    assert town.town.resolve("alice").rounds_completed == 1  # the round's end
    task = town.town.store.require_task(task_id)
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
