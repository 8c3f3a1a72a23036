"""Putting a dead agent's work back: the supervisor runs this continuously, and
`tt recover` runs it once. Nothing is lost: in-flight messages go back to the head of
the inbox in order, and the running task goes back to `assigned`.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import TYPE_CHECKING, Any

from redis.client import Pipeline

from tinytown import keys, states
from tinytown.errors import InvalidTransition, UsageError
from tinytown.models import Agent, AgentState, Message, MessageType, Task, TaskState, utcnow
from tinytown.round_steps import return_inflight
from tinytown.runner import kill_group
from tinytown.store import Store
from tinytown.tasks import back_to_assigned
from tinytown.wakeup import enqueue_round

if TYPE_CHECKING:
    from tinytown.town import Town


def kill_local_processes(store: Store, agent_id: str) -> None:
    """On this host, make sure neither the worker nor its CLI goes on running."""
    rt = store.r.hgetall(keys.runtime(store.town, agent_id))
    if rt.get("host") != socket.gethostname():
        return
    if rt.get("cli_pgid"):
        kill_group(int(rt["cli_pgid"]))
    if rt.get("pid"):
        try:
            os.kill(int(rt["pid"]), signal.SIGKILL)
        except (ProcessLookupError, PermissionError, ValueError):
            pass


def recover_agent(store: Store, agent: Agent, reason: str) -> Agent | None:
    """Mark a dead agent `error` and hand its work back. None if it was not live.

    The state, the returned messages, the running tasks (back to `assigned`) and the
    `recovered` event commit in one MULTI: nobody sees an `error` agent whose task
    still says `running`.
    """
    kill_local_processes(store, agent.id)
    running = [t for t in store.list_tasks()
               if t.assigned_to == agent.id and t.state == TaskState.RUNNING]

    def give_back(pipe: Pipeline, a: Agent) -> None:
        return_inflight(pipe, store.town, a.id)
        pipe.delete(keys.wake(store.town, a.id))
        pipe.hdel(keys.runtime(store.town, a.id), "pid", "cli_pgid")
        for task in running:
            back_to_assigned(task)
            task.updated_at = utcnow()
            store.put_task(task, pipe)
        store.add_event("recovered", a.id, pipe=pipe, name=a.name, reason=reason)

    try:
        return states.transition(
            store, agent.id, AgentState.ERROR, expect=states.ALLOWED_LIVE, reason=reason,
            change=lambda a: setattr(a, "current_task", None), also=give_back,
        )
    except InvalidTransition:
        return None


# --- `tt recover` and `tt reclaim` -----------------------------------------------------


def recover_town(town: Town) -> list[Agent]:
    """Once, what the supervisor does continuously: live agents whose worker is gone
    (no process on this host, or no heartbeat within the limit) become `error`."""
    from tinytown.control import worker_status

    recovered = []
    for agent in town.list_agents():
        if agent.state not in states.ALLOWED_LIVE:
            continue
        alive, _ = worker_status(town, agent)
        if not alive:
            after = recover_agent(town.store, agent, "tt recover: its worker is gone")
            if after is not None:
                recovered.append(after)
    return recovered


def _unfinished(town: Town, agent_id: str) -> list[Task]:
    return [t for t in town.store.list_tasks()
            if t.assigned_to == agent_id and not t.state.is_terminal]


def reclaim(
    town: Town,
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
    target = town.resolve(to_agent) if to_agent else None
    if target is not None and target.state.is_terminal:
        raise UsageError(f"--to {target.name}: that agent is {target.state.value}")
    agents = [town.resolve(source)] if source else town.list_agents()
    report = []
    for agent in agents:
        if not agent.state.is_terminal or (target is not None and agent.id == target.id):
            if source:
                raise UsageError(f"{agent.name} is {agent.state.value}: only a stopped, cold"
                                 " or errored agent's work can be reclaimed")
            continue
        messages = town.store.peek_inbox(agent.id)
        tasks = _unfinished(town, agent.id)
        if not messages and not tasks:
            continue
        entry: dict[str, Any] = {"agent": agent.name, "messages": len(messages),
                                 "tasks": [t.id for t in tasks], "action": "listed"}
        if target is not None:
            _move_to_agent(town, agent, target, tasks)
            entry["action"] = f"moved to {target.name}"
        elif to_backlog:
            kept = _move_to_backlog(town, agent, tasks)
            entry["action"] = "tasks to backlog" + (
                f"; {kept} other message(s) stay in the inbox" if kept else "")
        report.append(entry)
    return report


def _move_to_agent(town: Town, source: Agent, target: Agent, tasks: list[Task]) -> None:
    src, dst = keys.inbox(town.name, source.id), keys.inbox(town.name, target.id)

    def move(pipe: Pipeline) -> None:
        raws = pipe.lrange(src, 0, -1)
        moved = []
        for raw in raws:
            message = Message.from_json(raw)
            message.to = target.id
            moved.append(message)
        referenced = {getattr(m.body, "task_id", None) for m in moved}
        pipe.multi()
        pipe.delete(src)
        for message in moved:
            pipe.rpush(dst, message.to_json())
        for task in tasks:
            task.assigned_to = target.id
            task.state = TaskState.ASSIGNED
            town.store.put_task(task, pipe)
            if task.id not in referenced:
                town.store.push_message(Message(sender=keys.SUPERVISOR_ID, to=target.id,
                                                body=MessageType.task_assign(task.id)), pipe)
        town.store.add_event("reclaimed", source.id, pipe=pipe, to=target.id,
                             messages=len(moved), tasks=len(tasks))
        enqueue_round(pipe, town.name, target.id)

    town.store.transaction(move, src)


def _move_to_backlog(town: Town, source: Agent, tasks: list[Task]) -> int:
    src = keys.inbox(town.name, source.id)
    ids = {t.id for t in tasks}

    def move(pipe: Pipeline) -> int:
        raws = pipe.lrange(src, 0, -1)
        keep = [r for r in raws if not _assigns_one_of(Message.from_json(r), ids)]
        pipe.multi()
        pipe.delete(src)
        if keep:
            pipe.rpush(src, *keep)
        for task in tasks:
            task.assigned_to = None
            task.state = TaskState.PENDING
            town.store.put_task(task, pipe)
            pipe.rpush(keys.backlog(town.name), task.id)
        town.store.add_event("reclaimed", source.id, pipe=pipe, to="backlog", tasks=len(tasks))
        return len(keep)

    return town.store.transaction(move, src)


def _assigns_one_of(message: Message, task_ids: set[str]) -> bool:
    return message.type == "task_assign" and getattr(message.body, "task_id", None) in task_ids


def orphan_tasks(town: Town, to_backlog: bool = False, cancel: bool = False) -> list[Task]:
    """Unfinished tasks whose agent no longer exists; moved or cancelled when asked."""
    if to_backlog and cancel:
        raise UsageError("give --to-backlog or --cancel, not both")
    live = {a.id for a in town.list_agents()}
    orphans = [t for t in town.store.list_tasks()
               if t.assigned_to and t.assigned_to not in live and not t.state.is_terminal]
    for task in orphans:
        if cancel:
            town.cancel_task(task.id)
        elif to_backlog:
            def back(t: Task) -> None:
                t.assigned_to = None
                t.state = TaskState.PENDING

            town.store.update_task(task.id, back,
                                   also=lambda pipe, t: pipe.rpush(keys.backlog(town.name), t.id))
    return orphans
