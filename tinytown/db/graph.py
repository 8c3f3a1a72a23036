"""Dependencies between tasks: the reads and plans every write of the task graph shares.

A task's `after` names the tasks it waits for. Until each of them is `completed` it is
`blocked`: in no inbox and no queue, and listed in each unfinished dependency's
`tt:<town>:dependents:<id>` set (the reverse index, so a completion reads only its own
children). A dependency that failed or was cancelled leaves it blocked with a
`blocked_reason`, until the dependency is retried or the task unblocked.

Every function here runs in a transaction's watching phase (WATCH, then reads in
immediate mode) and watches what it reads, so the plan it returns is written in the
caller's MULTI or not at all: the completion of a task and the release of its
children are one atomic step, wherever a task is completed (`tasks.finish_task`,
`rounds.finish`). A child leaves `blocked` once: its release is planned only while it
reads `blocked`, and the same MULTI writes it out of that state, so a completion
recorded twice (a round re-run after a kill) never dispatches it twice.

This module does not dispatch: the writer that puts a released task in an inbox or a
role's queue is `tasks.queue_dispatch`, passed in (the task writes import this module).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import DependencyCycle, InvalidRecord, TaskNotFound
from tinytown.core.models import Task, TaskState, utcnow
from tinytown.db.connection import text, texts
from tinytown.db.store import Store, log

REASON_CHARS = 200  # of a failed dependency's error, in a blocked task's reason

Dispatch = Callable[[Store, Pipeline, Task], None]


def watch_tasks(store: Store, pipe: Pipeline, ids: Iterable[str]) -> dict[str, Task | None]:
    """The tasks, read under WATCH in one MGET (None: missing or not a valid record)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    names = [keys.task(store.town, i) for i in wanted]
    pipe.watch(*names)  # type: ignore[no-untyped-call]
    out: dict[str, Task | None] = {}
    for task_id, raw in zip(wanted, pipe.mget(names), strict=True):
        try:
            out[task_id] = Task.from_json(raw) if raw else None
        except InvalidRecord:
            log.warning("task %s is not a valid record: taken for missing", task_id)
            out[task_id] = None
    return out


def require_all(found: dict[str, Task | None]) -> dict[str, Task]:
    """Every dependency exists (TaskNotFound naming the first that does not)."""
    missing = [i for i, t in found.items() if t is None]
    if missing:
        raise TaskNotFound(f"no task with id {missing[0]} (given as a dependency)")
    return {i: t for i, t in found.items() if t is not None}


def unfinished(task: Task, deps: Mapping[str, Task | None]) -> list[str]:
    """The ids of `task`'s dependencies that are not completed (missing ones count)."""
    return [i for i in task.after
            if (d := deps.get(i)) is None or d.state != TaskState.COMPLETED]


def reason(task: Task, deps: Mapping[str, Task | None]) -> str | None:
    """Why a blocked task cannot go on by itself: its failed or cancelled (or
    vanished) dependencies; None when it only waits."""
    parts = []
    for i in task.after:
        d = deps.get(i)
        if d is None and i in deps:
            parts.append(f"{i[:8]} is gone")
        elif d is not None and d.state == TaskState.FAILED:
            error = (d.result or "no error given").strip().replace("\n", " ")
            parts.append(f"{i[:8]} failed: {error[:REASON_CHARS]}")
        elif d is not None and d.state == TaskState.CANCELLED:
            parts.append(f"{i[:8]} was cancelled")
    return "; ".join(parts) or None


def ensure_sets(store: Store, dep_ids: Iterable[str]) -> None:
    """Before a MULTI that adds to or removes from these tasks' dependents sets: a key
    of another Redis type there is set aside (kept), so no SADD fails inside the MULTI
    while the rest of it is written."""
    names = [keys.dependents(store.town, i) for i in dict.fromkeys(dep_ids)]
    if not names:
        return
    pipe = store.r.pipeline(transaction=False)
    for name in names:
        pipe.type(name)
    for name, kind in zip(names, pipe.execute(), strict=True):
        if text(kind) not in ("set", "none"):
            store.set_aside(name)


def queue_blocked(store: Store, pipe: Pipeline, task: Task, waiting: list[str],
                  why: str | None) -> None:
    """Queue on `pipe`: the task `blocked` (with `why`), indexed under each dependency
    it waits for, and a `blocked` event."""
    task.state = TaskState.BLOCKED
    task.blocked_reason = why
    task.updated_at = utcnow()
    store.put_task(task, pipe)
    for dep in waiting:
        pipe.sadd(keys.dependents(store.town, dep), task.id)
    store.add_event("blocked", task.assigned_to, pipe=pipe, task=task.id,
                    waits_for=",".join(waiting), reason=why)


def check_cycle(store: Store, pipe: Pipeline, task_id: str, after: list[str]) -> None:
    """Refuse (DependencyCycle, naming it) dependencies through which `task_id` would
    wait for itself. Walks the graph upstream from `after`, watching what it reads."""
    if task_id in after:
        raise DependencyCycle(f"task {task_id[:8]} cannot wait for itself")
    came_from = dict.fromkeys(after, task_id)  # id -> the task that waits for it
    frontier = list(came_from)
    while frontier:
        nxt = []
        for tid, t in watch_tasks(store, pipe, frontier).items():
            for up in t.after if t is not None else ():
                if up == task_id:
                    path = [tid]
                    while path[-1] != task_id:
                        path.append(came_from[path[-1]])
                    cycle = " -> ".join(i[:8] for i in [*reversed(path), task_id])
                    raise DependencyCycle(f"these dependencies make a cycle: {cycle}"
                                          " (each waits for the next)")
                if up not in came_from:
                    came_from[up] = tid
                    nxt.append(up)
        frontier = nxt


@dataclass
class Followers:
    """What a task's end does to the tasks that wait for it, read in the watching
    phase; `queue` writes it in the MULTI."""

    parent: Task
    released: list[Task] = field(default_factory=list)  # all dependencies done: dispatch
    touched: list[Task] = field(default_factory=list)  # still blocked, reason changed
    leave: list[str] = field(default_factory=list)  # the parent's own dependencies

    def queue(self, store: Store, pipe: Pipeline, dispatch: Dispatch) -> list[Task]:
        """Queue the writes on `pipe`; returns the tasks dispatched."""
        town = store.town
        if self.parent.state == TaskState.COMPLETED:
            pipe.delete(keys.dependents(town, self.parent.id))  # nobody waits any more
        for dep in self.leave:  # a blocked task that ended waits for nothing now
            pipe.srem(keys.dependents(town, dep), self.parent.id)
        for child in self.touched:
            child.updated_at = utcnow()
            store.put_task(child, pipe)
        for child in self.released:
            child.blocked_reason = None
            dispatch(store, pipe, child)
            store.add_event("released", child.assigned_to, pipe=pipe, task=child.id,
                            by=self.parent.id)
        return list(self.released)


def followers(store: Store, pipe: Pipeline, parent: Task) -> Followers:
    """Plan what `parent`'s new state (set in memory) does to its blocked dependents:
    completed, each whose other dependencies are all completed is released; failed or
    cancelled, each gets the reason; neither (a retry), each loses that reason. Reads
    under WATCH."""
    plan = Followers(parent)
    town = store.town
    if parent.state.is_terminal and parent.after:  # if it was blocked, it waits no more
        plan.leave = list(parent.after)
        ensure_sets(store, plan.leave)
    index = keys.dependents(town, parent.id)
    pipe.watch(index)  # type: ignore[no-untyped-call]
    try:
        ids = texts(pipe.smembers(index))
    except InvalidRecord:  # a key of another type: set aside, nobody is indexed there
        store.set_aside(index)
        ids = []
    children = [c for c in watch_tasks(store, pipe, sorted(ids)).values()
                if c is not None and c.state == TaskState.BLOCKED and parent.id in c.after]
    if not children:
        return plan
    others = watch_tasks(store, pipe, {i for c in children for i in c.after} - {parent.id})
    others[parent.id] = parent
    for child in children:
        if parent.state == TaskState.COMPLETED and not unfinished(child, others):
            plan.released.append(child)
            continue
        why = reason(child, others)
        if why != child.blocked_reason:
            child.blocked_reason = why
            plan.touched.append(child)
    return plan


def read_results(store: Store, task: Task) -> list[Task]:
    """The dependencies of `task` as stored now (for its prompt), in its `after` order."""
    if not task.after:
        return []
    raws = store.r.mget([keys.task(store.town, i) for i in task.after])
    out = []
    for raw in raws:
        try:
            if raw:
                out.append(Task.from_json(text(raw) or ""))
        except InvalidRecord:
            continue
    return out
