"""Task writes: the one home of assigning a task, the backlog, a role's queue and
finishing a task, shared by the API, the agent worker's rounds and recovery.

Each `queue_*` function queues its writes on a pipeline the caller commits (inside
its own MULTI when it has one); the others are whole transactions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import InvalidRecord, InvalidTransition
from tinytown.core.models import Agent, Message, MessageBody, Priority, Task, TaskState, utcnow
from tinytown.db import graph, mission_store, review_gate
from tinytown.db.connection import texts
from tinytown.db.store import Store, log
from tinytown.db.wakeup import enqueue_round, enqueue_task_job, queue_key

RESULT_LIMIT = 4000  # characters of output kept as a task's result


def finish_task(
    store: Store,
    task_id: str,
    state: TaskState,
    text: str | None,
    also: Callable[[Pipeline, Task], None] | None = None,
    released: list[Task] | None = None,
    expect: Callable[[Task], None] | None = None,
    diff: str | None = None,
) -> Task:
    """Move a task to a terminal state; a completion counts once on its agent.
    `expect` checks the task as read (raising refuses; an approval: it awaits one).

    Task and agent are updated in one transaction, so finishing a task twice (or two
    processes finishing it at once) is refused instead of counted twice. The same
    transaction releases the tasks that waited only for this one (`graph.followers`),
    or gives them the reason they stay blocked; `released` gets those dispatched.

    The review gate (tinytown.db.review_gate): completing a task that needs a review
    puts it `in_review` instead, with a review task carrying `diff` (its branch's); a
    review task's end moves the task it reviews on, in the same transaction.
    """
    task_key = keys.task(store.town, task_id)

    def body(pipe: Pipeline) -> Task:
        task = store.watched_task(pipe, task_id)
        if task.state.is_terminal:
            raise InvalidTransition(f"task {task.id} is already {task.state.value}")
        if expect is not None:
            expect(task)
        if task.state == TaskState.IN_REVIEW and state == TaskState.COMPLETED:
            raise InvalidTransition(
                f"task {task.id} is in review (review task {(task.review_task or '?')[:8]}):"
                f" a verdict moves it on (`tt review {task.id[:8]} approve|request-changes`)")
        agent = None
        agent_key = keys.agent(store.town, task.assigned_to) if task.assigned_to else None
        if agent_key and state == TaskState.COMPLETED:
            pipe.watch(agent_key)  # type: ignore[no-untyped-call]
            agent = _agent_or_none(pipe, agent_key)
        if (state == TaskState.COMPLETED and not task.state.at_gate
                and review_gate.needs_review(task)):
            return _into_review(store, pipe, task, text, agent, diff, released)
        dropped = review_gate.open_review(store, pipe, task)  # its task ended otherwise
        now = mark_finished(task, state, text)
        verdict = review_gate.judge_review(task) if task.reviews else None
        gate = review_gate.watch(store, pipe, task, verdict)
        follow = graph.followers(store, pipe, task)
        ensure_inboxes(store, follow.released)
        mission = mission_store.watch(store, pipe, task)
        pipe.multi()
        pipe.set(task_key, task.to_json())
        pipe.zrem(keys.role_pending(store.town), task.id)
        review_gate.queue_drop(store, pipe, dropped, f"task {task.id[:8]} {state.value}")
        dispatched = follow.queue(store, pipe, queue_dispatch)
        if gate is not None:
            dispatched += gate.queue(store, pipe, queue_dispatch)
        dispatched += mission_store.queue_advance(store, pipe, mission, task, queue_dispatch,
                                             dispatched)
        if released is not None:
            released[:] = dispatched
        if agent is not None and agent_key:
            agent.tasks_completed += 1
            agent.last_active_at = now
            pipe.set(agent_key, agent.to_json())
        store.add_event(f"task_{state.value}", task.assigned_to, pipe=pipe, task=task.id)
        if also is not None:
            also(pipe, task)
        return task

    return store.transaction(body, task_key)


def _into_review(store: Store, pipe: Pipeline, task: Task, text: str | None,
                 agent: Agent | None, diff: str | None, released: list[Task] | None) -> Task:
    """`finish_task`'s completion of a task that needs a review: `in_review`, and its
    review task queued for the reviewing role (one MULTI; in `released`, to wake a cold
    reviewer)."""
    if text is not None:
        task.result = text[-RESULT_LIMIT:]
    review = review_gate.review_text(task, agent.name if agent else "?",
                                     agent.branch if agent else None, diff)
    mission = mission_store.watch(store, pipe, task)
    pipe.multi()
    queued = review_gate.queue_into_review(store, pipe, task, review, queue_dispatch)
    mission_store.queue_advance(store, pipe, mission, task, queue_dispatch)
    if released is not None:
        released[:] = [queued]
    return task


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
    except InvalidRecord:
        log.warning("not counting the task for %s: not a valid Agent record", key)
        return None


def ensure_inboxes(store: Store, going: list[Task]) -> None:
    """Before a MULTI that dispatches `going`: their agents' inboxes are lists."""
    inboxes = [keys.inbox(store.town, t.assigned_to) for t in going if t.assigned_to]
    if inboxes:
        store.ensure_lists(*inboxes)


def queue_dispatch(store: Store, pipe: Pipeline, task: Task) -> None:
    """Queue on `pipe` a task whose dependencies are done, where a new one goes: its
    agent's inbox (woken), else its role's queue, else the backlog."""
    if task.assigned_to:
        queue_assignment(store, pipe, task, task.assigned_to, priority=task.priority)
    elif task.role:
        queue_role_job(store, pipe, task, task.role)
    else:
        queue_in_backlog(store, pipe, task)
        store.add_event("backlog_added", None, pipe=pipe, task=task.id)


def back_to_assigned(task: Task) -> None:
    """A task whose round was lost (crash, outage) waits to be run again."""
    if task.state == TaskState.RUNNING:
        task.state = TaskState.ASSIGNED


# --- assigning ------------------------------------------------------------------------


def queue_assignment(
    store: Store,
    pipe: Pipeline,
    task: Task,
    agent_id: str,
    *,
    priority: Priority = Priority.NORMAL,
    message: bool = True,
    wake: bool = True,
    event: bool = True,
    name: str | None = None,
    queue: str | None = None,
) -> None:
    """Queue on `pipe`: the task `assigned` to the agent, a `task_assign` message in its
    inbox (unless `message` is False: one is there already), an `assigned` event (with
    the agent's `name` and the `queue` it came from) and a round job (unless `wake` is
    False: the caller runs the round itself)."""
    task.state = TaskState.ASSIGNED
    task.assigned_to = agent_id
    task.updated_at = utcnow()
    store.put_task(task, pipe)
    if message:
        store.push_message(Message(sender=keys.SUPERVISOR_ID, to=agent_id, priority=priority,
                                   body=MessageBody.task_assign(task.id)), pipe)
    if event:
        store.add_event("assigned", agent_id, pipe=pipe, task=task.id, name=name, queue=queue)
    if wake:
        enqueue_round(pipe, store.town, agent_id)


def assign(store: Store, task: Task, agent: Agent, priority: Priority = Priority.NORMAL, *,
           wake: bool = True, queue: str | None = None) -> None:
    """Record the task as the agent's and wake it, in one MULTI (`queue`: the role or
    agent queue the task came from, for the event)."""
    store.ensure_lists(keys.inbox(store.town, agent.id))
    pipe = store.r.pipeline()
    queue_assignment(store, pipe, task, agent.id, priority=priority, wake=wake,
                     name=agent.name, queue=queue)
    pipe.execute()


def claim(
    store: Store,
    task_id: str,
    agent: Agent,
    *,
    from_backlog: bool = False,
    wake: bool = True,
    queue: str | None = None,
) -> Task | None:
    """Assign a `pending` task to the agent in one transaction; None when the task is
    no longer pending (taken meanwhile, or a duplicate job).

    `from_backlog`: the task must still be in the backlog, and leaves it; otherwise
    InvalidTransition.
    """
    task_key = keys.task(store.town, task_id)
    backlog_key = keys.backlog(store.town)
    watch = [task_key, backlog_key] if from_backlog else [task_key]
    store.ensure_lists(keys.inbox(store.town, agent.id))

    def body(pipe: Pipeline) -> Task | None:
        task = store.watched_task(pipe, task_id)
        if from_backlog and (task.state != TaskState.PENDING
                             or pipe.lpos(backlog_key, task_id) is None):
            raise InvalidTransition(f"task {task_id} is no longer in the backlog")
        if task.state != TaskState.PENDING:
            return None
        pipe.multi()
        pipe.zrem(keys.role_pending(store.town), task_id)  # taken: no more offers
        if from_backlog:
            pipe.lrem(backlog_key, 1, task_id)
        queue_assignment(store, pipe, task, agent.id, wake=wake, name=agent.name, queue=queue)
        return task

    return store.transaction(body, *watch)


# --- waiting for an agent: the backlog and role queues ----------------------------------


def queue_in_backlog(store: Store, pipe: Pipeline, task: Task) -> None:
    """Queue on `pipe`: the task `pending`, assigned to nobody, at the backlog's end."""
    _unassigned(task)
    task.updated_at = utcnow()
    store.put_task(task, pipe)
    pipe.rpush(keys.backlog(store.town), task.id)


def add_to_backlog(store: Store, task: Task, role: str | None = None) -> Task:
    if role is not None:
        task.role = role
    pipe = store.r.pipeline()
    queue_in_backlog(store, pipe, task)
    store.add_event("backlog_added", None, pipe=pipe, task=task.id, role=role)
    pipe.execute()
    return task


def move_to_backlog(store: Store, task_id: str) -> Task:
    """An existing task back to the backlog (its agent is gone), in one transaction."""
    def join_backlog(pipe: Pipeline, task: Task) -> None:
        pipe.rpush(keys.backlog(store.town), task.id)

    return store.update_task(task_id, _unassigned, also=join_backlog)


def _unassigned(task: Task) -> None:
    task.state = TaskState.PENDING
    task.assigned_to = None


def remove_from_backlog(store: Store, task_id: str) -> Task:
    """Take a task out of the backlog; it is kept, as `cancelled` (one transaction)."""
    def leave_backlog(pipe: Pipeline, task: Task) -> None:
        pipe.lrem(keys.backlog(store.town), 1, task.id)

    return finish_task(store, task_id, TaskState.CANCELLED, None, also=leave_backlog)


def queue_for_role(store: Store, task: Task, role: str) -> Task:
    """The task `pending` on the role's queue: whichever agent of the role is free
    takes it (a `tinytown.task` job)."""
    pipe = store.r.pipeline()
    queue_role_job(store, pipe, task, role)
    pipe.execute()
    return task


def queue_role_job(store: Store, pipe: Pipeline, task: Task, role: str) -> None:
    """Queue on `pipe`: the task `pending` for `role`, a `tinytown.task` job on the
    role's queue, its offer time and a `queued` event."""
    task.state = TaskState.PENDING
    task.assigned_to = None
    task.role = role
    task.updated_at = utcnow()
    store.put_task(task, pipe)
    enqueue_task_job(pipe, store.town, keys.role_queue(store.town, role), task.id)
    pipe.zadd(keys.role_pending(store.town), {task.id: time.time()})
    store.add_event("queued", None, pipe=pipe, task=task.id, role=role)


def reoffer_role_tasks(store: Store, older_than: float) -> list[str]:
    """Offer again the role tasks offered more than `older_than` seconds ago and still
    not taken whose job is in neither the role's queue nor a worker's unacked set: a
    job a frozen or cut-off worker took off the queue is gone, but its task is not.
    Tasks no longer pending leave the set. Returns the ids offered again."""
    pending_key = keys.role_pending(store.town)
    found: Any = store.r.zrangebyscore(pending_key, "-inf", time.time() - older_than)
    due = texts(found)
    if not due:
        return []
    unacked = " ".join(texts(store.r.hvals(queue_key(store.town, "unacked"))))
    queued: dict[str, str] = {}
    offered = []
    for task_id in due:
        task = store.get_task(task_id)
        role = task.role if task is not None else None
        if task is None or task.state != TaskState.PENDING or not isinstance(role, str):
            store.r.zrem(pending_key, task_id)
            continue
        queue = keys.role_queue(store.town, role)
        if queue not in queued:
            queued[queue] = " ".join(texts(store.r.lrange(queue_key(store.town, queue), 0, -1)))
        if task_id not in queued[queue] and task_id not in unacked:
            enqueue_task_job(store.r, store.town, queue, task_id)
            offered.append(task_id)
        store.r.zadd(pending_key, {task_id: time.time()})
    return offered
