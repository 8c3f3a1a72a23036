"""`tt recover` and `tt reclaim`: a dead or stopped agent's work, handed on.

The supervisor recovers dead agents continuously (`tinytown.db.requeue`); `tt
recover` does it once. `tt reclaim` moves what terminal agents left behind (their
inbox, their unfinished tasks) to another agent or to the backlog. The writes live in
`tinytown.db.requeue` and `tinytown.db.task_writes`.
"""

from __future__ import annotations

from typing import Any

from tinytown.core.errors import InvalidTransition, UsageError
from tinytown.core.models import Agent, AgentState, Task, TaskState
from tinytown.db import dependency_store, question_store, requeue, runtime, states
from tinytown.db.task_writes import finish_task, move_to_backlog
from tinytown.ops.context import TownContext, worker_status
from tinytown.ops.references import resolve


def recover_town(town: TownContext) -> list[Agent]:
    """Once, what the supervisor does continuously: live agents whose worker is gone
    (no process on this host, or no heartbeat within the limit) become `error`."""
    recovered = []
    for agent in town.store.list_agents():
        if agent.state not in states.ALLOWED_LIVE:
            continue
        if agent.state == AgentState.STARTING and not runtime.read(town.store, agent.id).get("pid"):
            continue  # its worker has not started yet (`--no-start`): not a crash
        alive, _ = worker_status(town, agent)
        if not alive:
            after = requeue.recover_agent(town.store, agent, "tt recover: its worker is gone")
            if after is not None:
                recovered.append(after)
    return recovered


def _unfinished(town: TownContext, agent_id: str) -> list[Task]:
    return [t for t in town.store.list_tasks()
            if t.assigned_to == agent_id and not t.state.is_terminal]


def reclaim(
    town: TownContext,
    source: str | None = None,
    to_agent: str | None = None,
    to_backlog: bool = False,
) -> list[dict[str, Any]]:
    """Move the inbox messages and unfinished tasks of terminal agents elsewhere.

    Without a destination nothing moves: the report lists what would. Messages are
    never discarded: with --to-backlog, messages other than task assignments stay in
    the source inbox (reported), since only tasks can wait in the backlog.
    """
    if to_agent and to_backlog:
        raise UsageError("give --to AGENT or --to-backlog, not both")
    target = resolve(town, to_agent) if to_agent else None
    if target is not None and target.state.is_terminal:
        raise InvalidTransition(f"--to {target.name}: that agent is {target.state.value}")
    agents = [resolve(town, source)] if source else town.store.list_agents()
    report = []
    for agent in agents:
        if not agent.state.is_terminal or (target is not None and agent.id == target.id):
            if source:
                raise InvalidTransition(f"{agent.name} is {agent.state.value}: only a"
                                        " stopped, cold or errored agent's work can be"
                                        " reclaimed")
            continue
        messages = town.store.peek_inbox(agent.id)
        tasks = _unfinished(town, agent.id)
        if not messages and not tasks:
            continue
        entry: dict[str, Any] = {"agent": agent.name, "messages": len(messages),
                                 "tasks": [t.id for t in tasks], "action": "listed"}
        blocked = [t for t in tasks if t.state == TaskState.BLOCKED]  # in no inbox
        asking = [t for t in tasks if t.state == TaskState.AWAITING_INPUT] if target else []
        tasks = [t for t in tasks if t.state != TaskState.BLOCKED and t not in asking]
        if target is not None or to_backlog:  # they stay blocked, for the new owner
            for task in blocked:
                dependency_store.retarget(town.store, task.id, target.id if target else None)
        for task in asking:  # its question stays open: the answer goes to the new owner
            assert target is not None
            question_store.retarget(town.store, task.id, target.id)
        if target is not None:
            requeue.move_to_agent(town.store, agent, target, tasks)
            entry["action"] = f"moved to {target.name}"
        elif to_backlog:
            kept = requeue.move_to_backlog(town.store, agent, tasks)
            entry["action"] = "tasks to backlog" + (
                f"; {kept} other message(s) stay in the inbox" if kept else "")
        report.append(entry)
    return report


def orphan_tasks(town: TownContext, to_backlog: bool = False, cancel: bool = False) -> list[Task]:
    """Unfinished tasks whose agent no longer exists; moved or cancelled when asked."""
    if to_backlog and cancel:
        raise UsageError("give --to-backlog or --cancel, not both")
    live = {a.id for a in town.store.list_agents()}
    orphans = [t for t in town.store.list_tasks()
               if t.assigned_to and t.assigned_to not in live and not t.state.is_terminal]
    for task in orphans:
        if cancel:
            finish_task(town.store, task.id, TaskState.CANCELLED, None)
        elif to_backlog and task.state == TaskState.BLOCKED:  # to the backlog once released
            dependency_store.retarget(town.store, task.id, None)
        elif to_backlog:
            move_to_backlog(town.store, task.id)
    return orphans
