"""Task lifecycle writes shared by the CLI, the API and the agent worker's rounds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from redis.client import Pipeline
from redis.exceptions import ResponseError

from tinytown import keys
from tinytown.errors import InvalidTransition, TaskNotFound
from tinytown.models import Agent, InvalidRecord, Task, TaskState, utcnow
from tinytown.store import Store, log

RESULT_LIMIT = 4000  # characters of output kept as a task's result


def finish_task(
    store: Store,
    task_id: str,
    state: TaskState,
    text: str | None,
    also: Callable[[Pipeline, Task], None] | None = None,
) -> Task:
    """Move a task to a terminal state; a completion counts once on its agent.

    Task and agent are updated in one transaction, so finishing a task twice (or two
    processes finishing it at once) is refused instead of counted twice.
    """
    task_key = keys.task(store.town, task_id)

    def body(pipe: Pipeline) -> Task:
        raw = pipe.get(task_key)
        if raw is None:
            raise TaskNotFound(f"no task with id {task_id}")
        task = Task.from_json(raw)
        if task.state.is_terminal:
            raise InvalidTransition(f"task {task.id} is already {task.state.value}")
        agent = None
        agent_key = keys.agent(store.town, task.assigned_to) if task.assigned_to else None
        if agent_key and state == TaskState.COMPLETED:
            pipe.watch(agent_key)
            agent = _agent_or_none(pipe, agent_key)
        now = mark_finished(task, state, text)
        pipe.multi()
        pipe.set(task_key, task.to_json())
        if agent is not None and agent_key:
            agent.tasks_completed += 1
            agent.last_active_at = now
            pipe.set(agent_key, agent.to_json())
        store.add_event(f"task_{state.value}", task.assigned_to, pipe=pipe, task=task.id)
        if also is not None:
            also(pipe, task)
        return task

    return store.transaction(body, task_key)


def mark_finished(task: Task, state: TaskState, text: str | None) -> datetime:
    """Set a task's terminal state, times and result (its tail) in memory; returns now."""
    now = utcnow()
    task.state = state
    task.completed_at = now
    task.updated_at = now
    if text is not None:
        task.result = text[-RESULT_LIMIT:]
    return now


def _agent_or_none(pipe: Pipeline, key: str) -> Agent | None:
    """The assignee's record; a damaged one is skipped (the task still finishes)."""
    try:
        raw = pipe.get(key)
        return Agent.from_json(raw) if raw else None
    except (InvalidRecord, ResponseError):
        log.warning("not counting the task for %s: not a valid Agent record", key)
        return None


def back_to_assigned(task: Task) -> None:
    """A task whose round was lost (crash, outage) waits to be run again."""
    if task.state == TaskState.RUNNING:
        task.state = TaskState.ASSIGNED
