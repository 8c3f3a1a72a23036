"""Tasks from a client's side: assign one to an agent, list them, finish one by hand
(complete, fail, cancel), and wait for one to end. The writes are `tinytown.db.task_writes`;
work aimed at a role or the backlog is `tinytown.ops.routing`."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from tinytown import ops
from tinytown.core.errors import MessageTooLarge, NotRunning, Refused, TaskNotFound, UsageError
from tinytown.core.models import (
    MAX_MESSAGE_BYTES,
    Agent,
    AgentState,
    AgentType,
    Priority,
    Task,
    TaskState,
)
from tinytown.core.validate import utf8_size, validate_timeout
from tinytown.db import task_writes
from tinytown.ops.context import TownContext
from tinytown.ops.polling import poll
from tinytown.ops.references import resolve, resolve_task

log = logging.getLogger("tinytown")


def assign(town: TownContext, agent_ref: str, task: Task | str,
           priority: Priority = Priority.NORMAL, after: Iterable[str] = ()) -> str:
    """Record the task as `assigned` and put a `task_assign` in the agent's inbox.

    With `after` (task ids or prefixes) it is `blocked` until those are completed and
    only then goes to the inbox (tinytown.db.dependency_store)."""
    agent = resolve(town, agent_ref)
    if agent.agent_type == AgentType.SUPERVISOR:
        raise UsageError("tasks are assigned to worker agents, not to the supervisor")
    if isinstance(task, str):
        task = Task(task)
    ops.reviewing.check_gates(town, task.gates)
    size = utf8_size(task.description)
    if size > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(
            f"the description is {size} bytes;"
            f" the limit is {MAX_MESSAGE_BYTES} (1 MiB)"
        )
    if task.parent_id and town.store.get_task(task.parent_id) is None:
        raise TaskNotFound(f"parent task {task.parent_id} does not exist")
    after = [*task.after, *after]  # a Task given with its `after` set counts too
    deps = ops.ordering.resolve_after(town, after) if after else []
    if deps:
        task.assigned_to, task.priority = agent.id, priority
        from tinytown.db.dependency_store import submit

        if not submit(town.store, task, deps):
            return task.id  # blocked: no inbox, nothing to wake yet
    else:
        task_writes.assign(town.store, task, agent, priority)
    work_arrived(town, agent, "the task")
    return task.id


def work_arrived(town: TownContext, agent: Agent, what: str) -> None:
    """Work (a task, a message) went to `agent`: a cold one is woken where it can run
    (scale to zero: `ops.hosting.wake`, loaded only then); for a stopped or errored one
    it waits in its inbox, and we say so."""
    if agent.state == AgentState.COLD:
        ops.hosting.wake(town, agent, f"{what.removeprefix('the ')} arrived")
    elif agent.state.is_terminal:
        log.warning("%s is %s: %s waits in its inbox until `tt restart %s`",
                    agent.name, agent.state.value, what, agent.name)


def list_tasks(town: TownContext, state: TaskState | str | None = None,
               agent_ref: str | None = None) -> list[Task]:
    wanted = TaskState(state) if state else None
    agent_id = resolve(town, agent_ref).id if agent_ref else None
    return [
        t
        for t in town.store.list_tasks()
        if (wanted is None or t.state == wanted)
        and (agent_id is None or t.assigned_to == agent_id)
    ]


def finish(town: TownContext, ref: str, state: TaskState, text: str | None) -> Task:
    """Complete, fail or cancel a task by hand; counts once for its agent (a second
    ending is refused)."""
    released: list[Task] = []
    found = resolve_task(town, ref)
    if state == TaskState.COMPLETED:
        _gates_allow_completion(found)
    diff = ops.reviewing.diff_for(town, found) if state == TaskState.COMPLETED else None
    task = task_writes.finish_task(town.store, found.id, state, text, released=released,
                                   expect=_gates_allow_completion
                                   if state == TaskState.COMPLETED else None, diff=diff)
    if released:  # loads the graph's client side only when a release happened
        ops.ordering.wake(town, released)
    return task


def _gates_allow_completion(task: Task) -> None:
    """A gated task completes through its gates, not by hand while they are due: one
    awaiting approval needs `tt approve`; one being worked on completes when its round
    ends and its gates pass (its output is its result)."""
    if task.state == TaskState.AWAITING_APPROVAL:
        raise Refused(f"task {task.id[:8]} awaits approval: `tt approve {task.id[:8]}`")
    if task.gates is not None and task.gates.any and task.state == TaskState.RUNNING:
        raise Refused(f"task {task.id[:8]} has gates: it completes when its round ends and"
                      " they pass (the round's output is its result)")


def current(town: TownContext, agent_ref: str) -> Task | None:
    agent = resolve(town, agent_ref)
    return town.store.get_task(agent.current_task) if agent.current_task else None


def wait(
    town: TownContext,
    ref: str,
    timeout: float | None = None,
    on_poll: Callable[[Task, float], None] | None = None,
    queue: bool = False,
) -> Task:
    """`Town.wait_task`: the task once it is completed, failed or cancelled; NotRunning
    at once for one that only a `tt restart` would run (the rule is told there)."""
    validate_timeout(timeout)
    found = resolve_task(town, ref)
    task_id = found.id
    assignee = _assignee(town, task_id)
    if not queue and not found.state.is_terminal and assignee is not None \
            and assignee.state.is_terminal \
            and assignee.state != AgentState.COLD \
            and not _comes_back(town, assignee):  # a cold one wakes for its work
        raise NotRunning(
            f"task {task_id[:8]} waits for {assignee.name}, which is"
            f" {assignee.state.value}: it runs after `tt restart {assignee.name}`"
            f" (`tt task wait {task_id[:8]} --queue` waits for that)")

    def read() -> Task:
        task = town.store.get_task(task_id)
        if task is None:
            raise TaskNotFound(f"task {task_id} disappeared")
        return task

    return poll(read, lambda t: t.state.is_terminal, timeout, on_poll,
                lambda t: f"task {task_id} is still {t.state.value} after {timeout:g}s")


def _comes_back(town: TownContext, agent: Agent) -> bool:
    """An agent in `error` that its host daemon or the supervisor restarts
    (`[agent] restart = "on-failure"`, no crash loop): its work is worth waiting for."""
    from tinytown.db.fleet import restartable

    return agent.state == AgentState.ERROR and restartable(town.settings.agent, agent)


def _assignee(town: TownContext, task_id: str) -> Agent | None:
    task = town.store.get_task(task_id)
    return town.store.get_agent(task.assigned_to) if task and task.assigned_to else None
