"""Putting a dead agent's work back: the supervisor runs this continuously, and
`tt recover` runs it once. Nothing is lost: in-flight messages go back to the head of
the inbox in order, and the running task goes back to `assigned`.
"""

from __future__ import annotations

import os
import signal
import socket

from redis.client import Pipeline

from tinytown import keys, states
from tinytown.errors import InvalidTransition
from tinytown.models import Agent, AgentState, Task, TaskState
from tinytown.runner import kill_group
from tinytown.store import Store
from tinytown.worker import RETURN_INFLIGHT_LUA


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
    """Mark a dead agent `error` and hand its work back. None if it was not live."""
    kill_local_processes(store, agent.id)

    def give_back(pipe: Pipeline, a: Agent) -> None:
        pipe.eval(RETURN_INFLIGHT_LUA, 2, keys.inflight(store.town, a.id),
                  keys.inbox(store.town, a.id))
        pipe.delete(keys.wake(store.town, a.id))
        pipe.hdel(keys.runtime(store.town, a.id), "pid", "cli_pgid")

    try:
        after = states.transition(
            store, agent.id, AgentState.ERROR, expect=states.ALLOWED_LIVE, reason=reason,
            change=lambda a: setattr(a, "current_task", None), also=give_back,
        )
    except InvalidTransition:
        return None
    for task in store.list_tasks():
        if task.assigned_to == agent.id and task.state == TaskState.RUNNING:
            store.update_task(task.id, _reassign)
    store.add_event("recovered", agent.id, name=agent.name, reason=reason)
    return after


def _reassign(task: Task) -> None:
    if task.state == TaskState.RUNNING:
        task.state = TaskState.ASSIGNED
