"""A round's three Redis steps against a real Redis, without a worker: what `begin`
takes, and that `start` and `finish` stay correct when records change in between."""

from __future__ import annotations

import json

import pytest

from tests.helpers import TownFixture
from tinytown.core import keys
from tinytown.core.models import AgentState, Message, MessageType, Task, TaskState, utcnow
from tinytown.db import rounds as round_steps

SUP = keys.SUPERVISOR_ID


def _setup(town: TownFixture) -> tuple[str, str]:
    """An idle agent (no worker) with a note and a task in its inbox, oldest first."""
    t = town.town
    agent_id = t.spawn_agent("alice", start=False).id
    t.store.update_agent(agent_id, lambda a: setattr(a, "state", AgentState.IDLE))
    t.channel.send("alice", MessageType.informational("fyi"))
    task_id = t.assign("alice", Task("build it"))
    return agent_id, task_id


def _outcome(number: int = 1, ok: bool = True) -> round_steps.Outcome:
    return round_steps.Outcome(number=number, ok=ok, output="done", error="it broke",
                               context=json.dumps({"round": number}), context_rounds=3)


def test_begin_takes_up_to_the_first_actionable_message_and_reads_its_task(
    town: TownFixture,
) -> None:
    agent_id, task_id = _setup(town)
    t = town.town
    t.channel.send("alice", MessageType.query("later?"))  # stays: after the task
    begun = round_steps.begin(t.store, agent_id, 100)
    assert begun.verdict == "take"
    assert [Message.from_json(m).type for m in begun.messages] == ["informational",
                                                                   "task_assign"]
    assert begun.task_json is not None and Task.from_json(begun.task_json).id == task_id
    assert t.redis.lrange(keys.inflight(t.name, agent_id), 0, -1) == begun.messages
    assert [m.type for m in t.store.peek_inbox(agent_id)] == ["query"]
    assert not t.redis.exists(keys.wake(t.name, agent_id))


def test_begin_leaves_the_inbox_of_a_paused_or_stopped_agent(town: TownFixture) -> None:
    agent_id, _ = _setup(town)
    t = town.town
    t.store.update_agent(agent_id, lambda a: setattr(a, "state", AgentState.PAUSED))
    assert round_steps.begin(t.store, agent_id, 100).verdict == "wait"
    t.redis.set(keys.stop_flag(t.name, agent_id), "1")
    assert round_steps.begin(t.store, agent_id, 100).verdict == "stop"
    assert t.store.inbox_len(agent_id) == 2
    t.redis.delete(keys.stop_flag(t.name, agent_id))
    t.store.delete_agent(t.store.require_agent(agent_id))
    assert round_steps.begin(t.store, agent_id, 100).verdict == "gone"


def test_start_on_unchanged_records_writes_both_and_one_event(town: TownFixture) -> None:
    agent_id, task_id = _setup(town)
    t = town.town
    begun = round_steps.begin(t.store, agent_id, 100)
    started = round_steps.start(t.store, agent_id, task_id, "round 1", seen=begun)
    assert started is not None
    agent, task = t.store.require_agent(agent_id), t.store.require_task(task_id)
    assert (agent.state, agent.current_task) == (AgentState.WORKING, task_id)
    assert task.state == TaskState.RUNNING and task.started_at is not None
    last = t.store.read_events(1)[-1]
    assert (last["kind"], last["old"], last["new"], last["reason"]) == (
        "state", "idle", "working", "round 1")


def test_start_after_the_agent_record_changed_keeps_that_change(town: TownFixture) -> None:
    agent_id, task_id = _setup(town)
    t = town.town
    begun = round_steps.begin(t.store, agent_id, 100)
    t.store.update_agent(agent_id, lambda a: setattr(a, "current_scope", "written meanwhile"))
    assert round_steps.start(t.store, agent_id, task_id, "round 1", seen=begun) is not None
    agent = t.store.require_agent(agent_id)
    assert agent.state == AgentState.WORKING and agent.current_scope == "written meanwhile"


def test_start_refuses_an_agent_paused_after_begin(town: TownFixture) -> None:
    agent_id, task_id = _setup(town)
    t = town.town
    begun = round_steps.begin(t.store, agent_id, 100)
    t.store.update_agent(agent_id, lambda a: setattr(a, "state", AgentState.PAUSED))
    with pytest.raises(round_steps.CannotStart):
        round_steps.start(t.store, agent_id, task_id, "round 1", seen=begun)
    assert t.store.require_task(task_id).state == TaskState.ASSIGNED


def test_start_skips_a_task_cancelled_after_begin(town: TownFixture) -> None:
    agent_id, task_id = _setup(town)
    t = town.town
    begun = round_steps.begin(t.store, agent_id, 100)
    t.store.update_task(task_id, lambda x: setattr(x, "state", TaskState.CANCELLED))
    assert round_steps.start(t.store, agent_id, task_id, "round 1", seen=begun) is None
    assert t.store.require_agent(agent_id).state == AgentState.IDLE


def test_finish_records_everything_at_once(town: TownFixture) -> None:
    agent_id, task_id = _setup(town)
    t = town.town
    begun = round_steps.begin(t.store, agent_id, 100)
    round_steps.start(t.store, agent_id, task_id, "round 1", seen=begun)
    after = round_steps.finish(t.store, agent_id, task_id, _outcome())
    task = t.store.require_task(task_id)
    assert (task.state, task.result) == (TaskState.COMPLETED, "done")
    assert (after.state, after.current_task, after.rounds_completed, after.tasks_completed) == (
        AgentState.IDLE, None, 1, 1)
    assert t.store.require_agent(agent_id).to_json() == after.to_json()
    reports = [m for m in t.store.peek_inbox(SUP) if m.type == "task_done"]
    assert [getattr(m.body, "task_id", None) for m in reports] == [task_id]
    assert not t.redis.exists(keys.inflight(t.name, agent_id))
    assert t.redis.lrange(keys.context(t.name, agent_id), 0, -1) == ['{"round": 1}']


def test_finish_keeps_an_outcome_the_cli_recorded_and_counts_it_once(
    town: TownFixture,
) -> None:
    agent_id, task_id = _setup(town)
    t = town.town
    begun = round_steps.begin(t.store, agent_id, 100)
    round_steps.start(t.store, agent_id, task_id, "round 1", seen=begun)

    def failed_by_the_cli(task: Task) -> None:
        task.state, task.result, task.completed_at = TaskState.FAILED, "gave up", utcnow()

    t.store.update_task(task_id, failed_by_the_cli)
    after = round_steps.finish(t.store, agent_id, task_id, _outcome(ok=True))
    assert t.store.require_task(task_id).result == "gave up"
    assert after.tasks_completed == 0 and after.state == AgentState.IDLE
    assert [m.type for m in t.store.peek_inbox(SUP)
            if m.type.startswith("task_")] == ["task_failed"]
