"""Writes of the task graph besides a completion: a new task with dependencies, adding
dependencies to a blocked task, retrying a failed or cancelled task, unblocking a task
whose dependency failed; and waking the cold agents a release gave work to.

Each is one transaction under WATCH of every task it reads (`tinytown/db/graph.py`):
an unknown dependency or a cycle is refused before anything is written, and a
dependency that completes meanwhile makes the transaction read again, so a task is
never left blocked on a dependency that is done.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import InvalidTransition
from tinytown.core.models import Agent, AgentState, Task, TaskState, utcnow
from tinytown.core.roles import roles_of
from tinytown.core.settings import Settings
from tinytown.db import fleet, graph
from tinytown.db.store import Store, log
from tinytown.db.task_writes import ensure_inboxes, queue_dispatch


def submit(store: Store, task: Task, after: list[str]) -> bool:
    """Record a new task (its `assigned_to` or `role` set) that waits for `after`:
    dispatched now when every one is completed (True), else `blocked` (False).
    TaskNotFound for an unknown dependency, DependencyCycle for a cycle; nothing
    written then."""
    task.after = list(dict.fromkeys(after))
    key = keys.task(store.town, task.id)
    ensure_inboxes(store, [task])

    def body(pipe: Pipeline) -> bool:
        deps = graph.require_all(graph.watch_tasks(store, pipe, task.after))
        if pipe.exists(key):  # an existing task given again: it may be upstream
            graph.check_cycle(store, pipe, task.id, task.after)
        waiting = graph.unfinished(task, deps)
        graph.ensure_sets(store, waiting)
        pipe.multi()
        if waiting:
            graph.queue_blocked(store, pipe, task, waiting, graph.reason(task, deps))
            return False
        queue_dispatch(store, pipe, task)
        return True

    return store.transaction(body, key)


def add_dependencies(store: Store, task_id: str, after: list[str]) -> Task:
    """More dependencies for a blocked task (one already completed is satisfied at
    once). TaskNotFound for an unknown one, DependencyCycle for a cycle, nothing
    written then; InvalidTransition when the task is not blocked."""
    key = keys.task(store.town, task_id)

    def body(pipe: Pipeline) -> Task:
        task = store.watched_task(pipe, task_id)
        if task.state != TaskState.BLOCKED:
            raise InvalidTransition(f"task {task_id[:8]} is {task.state.value}: dependencies"
                                    " are added to a blocked task only")
        new = [i for i in dict.fromkeys(after) if i not in task.after]
        graph.require_all(graph.watch_tasks(store, pipe, new))
        graph.check_cycle(store, pipe, task.id, new)
        task.after = [*task.after, *new]
        deps = graph.watch_tasks(store, pipe, task.after)
        waiting = graph.unfinished(task, deps)
        graph.ensure_sets(store, waiting)
        pipe.multi()
        if waiting:
            graph.queue_blocked(store, pipe, task, waiting, graph.reason(task, deps))
        else:
            task.blocked_reason = None
            queue_dispatch(store, pipe, task)
        return task

    return store.transaction(body, key)


def retry(store: Store, task_id: str, agent_id: str | None = None, role: str | None = None
          ) -> tuple[Task, bool]:
    """Run a failed or cancelled task again: for the same agent or role, or for
    `agent_id` / `role`; blocked again if a dependency is not completed. The tasks
    blocked on it wait for it again (their reason naming it goes). Returns the task
    and whether it was dispatched."""
    key = keys.task(store.town, task_id)
    if agent_id is not None:
        store.ensure_lists(keys.inbox(store.town, agent_id))

    def body(pipe: Pipeline) -> tuple[Task, bool]:
        task = store.watched_task(pipe, task_id)
        if task.state not in (TaskState.FAILED, TaskState.CANCELLED):
            raise InvalidTransition(f"task {task_id[:8]} is {task.state.value}: only a failed"
                                    " or cancelled task is retried")
        old = task.state
        if agent_id is not None:
            task.assigned_to, task.role = agent_id, None
        elif role is not None:
            task.assigned_to, task.role = None, role
        ensure_inboxes(store, [task])
        task.completed_at = task.started_at = None
        task.result = None
        task.fix_rounds, task.follow_up = 0, None  # a retry: its check gate's rounds afresh
        deps = graph.watch_tasks(store, pipe, task.after)
        waiting = graph.unfinished(task, deps)
        task.state = TaskState.BLOCKED if waiting else TaskState.ASSIGNED  # not terminal
        follow = graph.followers(store, pipe, task)
        graph.ensure_sets(store, waiting)
        pipe.multi()
        store.add_event("retried", task.assigned_to, pipe=pipe, task=task.id, was=old.value,
                        role=task.role)
        follow.queue(store, pipe, queue_dispatch)
        if waiting:
            graph.queue_blocked(store, pipe, task, waiting, graph.reason(task, deps))
            return task, False
        task.blocked_reason = None
        queue_dispatch(store, pipe, task)
        return task, True

    return store.transaction(body, key)


def unblock(store: Store, task_id: str) -> tuple[Task, bool]:
    """A blocked task goes on without its failed, cancelled or vanished dependencies
    (they leave its `after`): dispatched when nothing else is unfinished, else it
    waits for the rest. InvalidTransition when it is not blocked, or none of its
    dependencies failed. Returns the task and whether it was dispatched."""
    key = keys.task(store.town, task_id)

    def body(pipe: Pipeline) -> tuple[Task, bool]:
        task = store.watched_task(pipe, task_id)
        if task.state != TaskState.BLOCKED:
            raise InvalidTransition(f"task {task_id[:8]} is {task.state.value}, not blocked")
        deps = graph.watch_tasks(store, pipe, task.after)
        dropped = [i for i in task.after if (d := deps.get(i)) is None
                   or d.state in (TaskState.FAILED, TaskState.CANCELLED)]
        if not dropped:
            raise InvalidTransition(
                f"task {task_id[:8]} waits for {', '.join(i[:8] for i in task.after)}, none"
                " of which failed: it goes on when they are completed")
        task.after = [i for i in task.after if i not in dropped]
        waiting = graph.unfinished(task, deps)
        ensure_inboxes(store, [task])
        graph.ensure_sets(store, [*waiting, *dropped])
        pipe.multi()
        for dep in dropped:
            pipe.srem(keys.dependents(store.town, dep), task.id)
        store.add_event("unblocked", task.assigned_to, pipe=pipe, task=task.id,
                        dropped=",".join(dropped))
        if waiting:
            graph.queue_blocked(store, pipe, task, waiting, graph.reason(task, deps))
            return task, False
        task.blocked_reason = None
        task.updated_at = utcnow()
        queue_dispatch(store, pipe, task)
        return task, True

    return store.transaction(body, key)


def retarget(store: Store, task_id: str, agent_id: str | None) -> bool:
    """A blocked task's work goes to another agent (or, with None, to the backlog when
    it is released): its agent is gone (`tt reclaim`). False when it is no longer
    blocked (released meanwhile: it went where a task goes)."""
    moved: list[bool] = []

    def change(task: Task) -> None:
        moved[:] = [task.state == TaskState.BLOCKED]
        if moved[0]:
            task.assigned_to = agent_id
            if agent_id is None:
                task.role = None

    store.update_task(task_id, change)
    return bool(moved and moved[0])


def wake_released(store: Store, settings: Settings, released: list[Task],
                  start_here: Callable[[Agent], object] | None) -> None:
    """Dispatched tasks whose agent is cold wake it, as a new assignment does (a role's
    task: its member idle longest, when no member is live). Best effort: the task is
    queued whatever happens here."""
    timeout = settings.supervisor.heartbeat_timeout_secs
    agents: list[Agent] | None = None
    for task in released:
        try:
            if task.assigned_to:
                agent = store.get_agent(task.assigned_to)
                if agent is not None and agent.state == AgentState.COLD:
                    fleet.wake_cold(store, agent, "the task's dependencies are done", timeout,
                                    start_here)
                continue
            if not task.role or task.state != TaskState.PENDING:
                continue
            agents = store.list_agents() if agents is None else agents
            known = set(settings.known_roles())
            members = [a for a in agents if task.role in roles_of(a, known)]
            cold = [a for a in members if a.state == AgentState.COLD]
            if cold and not any(not a.state.is_terminal for a in members):
                sleeper = min(cold, key=lambda a: a.last_active_at)
                fleet.wake_cold(store, sleeper, "a task for its role arrived", timeout,
                                start_here)
                agents = None  # read again: one woke
        except Exception:  # the release stands: a wake is only a nudge
            log.exception("could not wake the agent of released task %s", task.id)
