"""Handing a dead or stopped agent's work back: the one home of those writes.

`recover_agent` is what the supervisor does to an agent whose worker died (and `tt
recover`, `tt restart` of a dead one); `move_to_agent` and `move_to_backlog` are what
`tt reclaim` does with a terminal agent's inbox and tasks. Nothing is lost: messages
keep their order, and tasks go back to `assigned` or to the backlog.
"""

from __future__ import annotations

import threading

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import InvalidTransition
from tinytown.core.models import Agent, AgentState, Message, Task, TaskState, utcnow
from tinytown.db import runtime, states
from tinytown.db.connection import texts
from tinytown.db.rounds import return_inflight
from tinytown.db.store import Store
from tinytown.db.task_writes import back_to_assigned, queue_assignment, queue_in_backlog
from tinytown.db.wakeup import enqueue_round
from tinytown.system.processes import kill_recorded


def kill_local_processes(store: Store, agent_id: str, wait: bool = True
                         ) -> threading.Thread | None:
    """On this host, make sure neither the agent's worker nor its CLI goes on running
    (`wait=False`: the CLI's end is waited for in the thread returned)."""
    return kill_recorded(runtime.read(store, agent_id), wait)


def recover_agent(store: Store, agent: Agent, reason: str, wait: bool = True,
                  to: AgentState = AgentState.ERROR) -> Agent | None:
    """Mark a dead agent `error` (or `to`: `stopped` for one restored from a snapshot,
    which has no worker but did not crash) and hand its work back. None if it was not
    live. `wait=False`: a CLI that is slow to die is not waited for (the supervisor's loop).

    The state, the returned messages, the running tasks (back to `assigned`) and the
    `recovered` event commit in one MULTI: nobody sees an `error` agent whose task
    still says `running`.
    """
    kill_local_processes(store, agent.id, wait)
    running = [t for t in store.list_tasks()
               if t.assigned_to == agent.id and t.state == TaskState.RUNNING]

    def give_back(pipe: Pipeline, a: Agent) -> None:
        return_inflight(pipe, store.town, a.id)
        pipe.delete(keys.wake(store.town, a.id))
        runtime.forget_processes(store, a.id, pipe)
        for task in running:
            back_to_assigned(task)
            task.updated_at = utcnow()
            store.put_task(task, pipe)
        store.add_event("recovered", a.id, pipe=pipe, name=a.name, reason=reason)

    try:
        return states.transition(
            store, agent.id, to, expect=states.ALLOWED_LIVE, reason=reason,
            change=lambda a: setattr(a, "current_task", None), also=give_back,
        )
    except InvalidTransition:
        return None


def move_to_agent(store: Store, source: Agent, target: Agent, tasks: list[Task]) -> None:
    """The source's whole inbox (in order) and its unfinished `tasks` to the target, in
    one transaction; a task no moved message assigns gets a `task_assign` of its own."""
    src, dst = keys.inbox(store.town, source.id), keys.inbox(store.town, target.id)

    def move(pipe: Pipeline) -> None:
        raws = texts(pipe.lrange(src, 0, -1))
        pipe.multi()
        moved = store.parse_messages(raws, pipe)  # the unparsable go to the dead letters
        for message in moved:
            message.to = target.id
        referenced = {getattr(m.body, "task_id", None) for m in moved}
        pipe.delete(src)
        for message in moved:
            pipe.rpush(dst, message.to_json())
        for task in tasks:
            queue_assignment(store, pipe, task, target.id, message=task.id not in referenced,
                             wake=False, event=False)
        store.add_event("reclaimed", source.id, pipe=pipe, to=target.id,
                        messages=len(moved), tasks=len(tasks))
        enqueue_round(pipe, store.town, target.id)

    store.transaction(move, src)


def move_to_backlog(store: Store, source: Agent, tasks: list[Task]) -> int:
    """The unfinished `tasks` to the backlog, and their `task_assign` messages out of the
    source's inbox, in one transaction; returns how many other messages stay there."""
    src = keys.inbox(store.town, source.id)
    ids = {t.id for t in tasks}

    def move(pipe: Pipeline) -> int:
        raws = texts(pipe.lrange(src, 0, -1))
        keep = [raw for raw in raws if not _assigns_one_of(raw, ids)]
        pipe.multi()
        pipe.delete(src)
        if keep:
            pipe.rpush(src, *keep)
        for task in tasks:
            queue_in_backlog(store, pipe, task)
        store.add_event("reclaimed", source.id, pipe=pipe, to="backlog", tasks=len(tasks))
        return len(keep)

    return store.transaction(move, src)


def _assigns_one_of(raw: str, task_ids: set[str]) -> bool:
    """Whether the inbox element assigns one of the tasks (a bad element stays)."""
    try:
        message = Message.from_json(raw)
    except ValueError:
        return False
    return message.type == "task_assign" and getattr(message.body, "task_id", None) in task_ids
