"""Missions in Redis: the one module that writes `tt:<town>:mission:<name>` and
`tt:<town>:missions`, and the mission's dispatcher.

A mission's tasks are written `blocked` (the mission holds them); the dispatcher
(`_decide`) releases those whose dependencies (`after`) are all completed, at most
`parallel` of them assigned or running at once, and none once the tasks' cost reaches
the budget. It runs in the same transaction as every change that can free a task: the
mission's creation, a task of it finishing (a round's end, `tt task complete/fail/
cancel`: tinytown.db.task_writes and tinytown.db.rounds call `watch` and `queue_advance`),
a task added, or a look at the mission. Each of those writes the mission's key, which
each WATCHes: two tasks finishing at once are serialised, and a task is released
exactly once (the release and the `blocked` -> `assigned` move commit together).
A mission's conductor is woken there too (tinytown.db.conductor_wakes), exactly once.

Dispatching a task (its assignment or its role's queue) is tinytown.db.task_writes' write;
it is passed in as `dispatch`, so this module does not import that one (which imports
this one for its hooks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import (
    DependencyCycle,
    InvalidRecord,
    InvalidTransition,
    MissionNotFound,
    NameTaken,
    Refused,
)
from tinytown.core.models import Mission, MissionState, Task, TaskState, utcnow
from tinytown.db import conductor_wakes
from tinytown.db.connection import text, texts
from tinytown.db.store import Store, log

Dispatch = Callable[[Store, Pipeline, Task], None]  # tinytown.db.task_writes.queue_dispatch
# released, not ended (a task in review: its reviewer is at work)
ACTIVE = (TaskState.PENDING, TaskState.ASSIGNED, TaskState.RUNNING,
          TaskState.AWAITING_INPUT, TaskState.IN_REVIEW)
OVER_BUDGET = "over budget"


@dataclass
class View:
    """A mission and its tasks as read in a transaction's watching phase."""

    mission: Mission
    tasks: dict[str, Task] = field(default_factory=dict)  # by id; missing: not readable


def get(store: Store, name: str) -> Mission | None:
    key = keys.mission(store.town, name)
    raw = text(store.r.get(key))
    if raw is None:
        return None
    try:
        return Mission.from_json(raw)
    except InvalidRecord:
        log.warning("skipping %s: not a valid Mission record", key)
        return None


def require(store: Store, name: str) -> Mission:
    found = get(store, name)
    if found is None:
        raise MissionNotFound(f"no mission named {name!r} (`tt mission list` lists them)")
    return found


def names(store: Store) -> list[str]:
    return sorted(texts(store.r.smembers(keys.missions(store.town))))


def tasks_of(store: Store, mission: Mission) -> dict[str, Task]:
    """The mission's tasks by id, its conductor's too (a task whose record is gone is
    left out)."""
    return _read_tasks(store, store.r, _ids(mission))


def _ids(mission: Mission) -> list[str]:
    return [*mission.tasks.values(), *mission.conductor_tasks]


def _read_tasks(store: Store, reader: object, ids: list[str]) -> dict[str, Task]:
    found: dict[str, Task] = {}
    if not ids:
        return found
    raws = texts(reader.mget([keys.task(store.town, i) for i in ids]))  # type: ignore[attr-defined]
    for task_id, raw in zip(ids, raws, strict=True):
        if raw is None:
            continue
        try:
            found[task_id] = Task.from_json(raw)
        except InvalidRecord:
            log.warning("mission task %s is not a valid Task record", task_id)
    return found


def _watched(store: Store, pipe: Pipeline, name: str) -> View:
    key = keys.mission(store.town, name)
    pipe.watch(key)  # type: ignore[no-untyped-call]
    raw = text(pipe.get(key))
    if raw is None:
        raise MissionNotFound(f"no mission named {name!r} (`tt mission list` lists them)")
    mission = Mission.from_json(raw)
    if mission.conductor:  # a wake-up may go into its inbox in this transaction
        store.ensure_lists(keys.inbox(store.town, mission.conductor))
    return View(mission, _read_tasks(store, pipe, _ids(mission)))


# --- creating and changing -------------------------------------------------------------


def create(store: Store, mission: Mission, tasks: list[Task], dispatch: Dispatch) -> Mission:
    """Write the mission and all its tasks (`blocked`) and release the first ones, in
    one transaction; NameTaken if a mission of that name exists. Its conductor's first
    task (among `tasks`, listed in its `conductor_tasks`) is dispatched at once."""
    key = keys.mission(store.town, mission.name)

    def body(pipe: Pipeline) -> Mission:
        if pipe.exists(key):
            raise NameTaken(f"a mission named {mission.name!r} exists already")
        if mission.state != MissionState.AWAITING_APPROVAL:  # gated: held until approved
            mission.state = MissionState.RUNNING
        view = View(mission, {t.id: t for t in tasks})
        pipe.multi()
        pipe.sadd(keys.missions(store.town), mission.name)
        for task in tasks:
            if task.id in mission.conductor_tasks:
                dispatch(store, pipe, task)
            else:
                store.put_task(task, pipe)
        store.add_event("mission_started", None, pipe=pipe, mission=mission.name,
                        tasks=len(tasks))
        if mission.state == MissionState.AWAITING_APPROVAL:
            store.add_event("mission_awaiting_approval", None, pipe=pipe,
                            mission=mission.name)
        _queue(store, pipe, view, dispatch, MissionState.PLANNING)
        return view.mission

    return store.transaction(body, key)


def advance(store: Store, name: str, dispatch: Dispatch) -> View:
    """Release what can run now and bring the mission's state up to date (idempotent:
    a look at a mission after a retried task, or a raised budget)."""
    def body(pipe: Pipeline) -> View:
        view = _watched(store, pipe, name)
        before = view.mission.state
        pipe.multi()
        _queue(store, pipe, view, dispatch, before, quiet=True)
        return view

    return store.transaction(body)


def watch(store: Store, pipe: Pipeline, task: Task) -> View | None:
    """In a transaction about to end `task` (watching phase): its mission, watched and
    read; None for a task of no mission (or of one that is gone)."""
    if not task.mission:
        return None
    try:
        return _watched(store, pipe, task.mission)
    except (MissionNotFound, InvalidRecord):
        return None


def queue_advance(store: Store, pipe: Pipeline, view: View | None, task: Task,
                  dispatch: Dispatch, released: Sequence[Task] = ()) -> list[Task]:
    """In the same transaction, after MULTI: `task` as it is about to be written (its
    new state), and what its mission releases because of it. `released`: tasks the
    same transaction dispatched already (the dependency index's followers: a mission
    task retried while its dependencies were unfinished is indexed there too), never
    released twice. Returns the tasks the mission released."""
    if view is None:
        return []
    for done in (task, *released):
        if done.id in view.tasks:
            view.tasks[done.id] = done
    view.tasks[task.id] = task
    return _queue(store, pipe, view, dispatch, view.mission.state,
                  written={task.id, *(t.id for t in released)})


def add_task(store: Store, name: str, task: Task, label: str, dispatch: Dispatch) -> View:
    """Add `task` (already `blocked`, its `after` ids of this mission's tasks) under
    `label`; released at once if it can run. A done mission runs again for it."""
    def body(pipe: Pipeline) -> View:
        view = _watched(store, pipe, name)
        mission = view.mission
        if mission.state in (MissionState.CANCELLED, MissionState.FAILED):
            raise Refused(f"mission {name!r} is {mission.state.value}: it takes no new tasks")
        if label in mission.tasks:
            raise NameTaken(f"mission {name!r} has a task named {label!r} already")
        before = mission.state
        if mission.state == MissionState.DONE:
            mission.state = MissionState.RUNNING
            mission.finished_at = mission.summary = None
        mission.tasks[label] = task.id
        view.tasks[task.id] = task
        pipe.multi()
        store.put_task(task, pipe)
        store.add_event("mission_task_added", task.assigned_to, pipe=pipe, mission=name,
                        task=task.id, name=label)
        _queue(store, pipe, view, dispatch, before)
        return view

    return store.transaction(body)


def approve(store: Store, name: str, dispatch: Dispatch, by: str | None = None,
            note: str | None = None) -> View:
    """A mission that awaits approval runs: its first tasks are released at once, in
    the same transaction; Refused when it does not await approval."""
    def body(pipe: Pipeline) -> View:
        view = _watched(store, pipe, name)
        before = view.mission.state
        _awaiting(view.mission)
        view.mission.state = MissionState.RUNNING
        pipe.multi()
        store.add_event("mission_approved", None, pipe=pipe, mission=name, by=by, note=note)
        _queue(store, pipe, view, dispatch, before)
        return view

    return store.transaction(body)


def _awaiting(mission: Mission) -> None:
    if mission.state != MissionState.AWAITING_APPROVAL:
        raise Refused(f"mission {mission.name!r} is {mission.state.value}, not awaiting"
                      " approval")


def end(store: Store, name: str, state: MissionState, reason: str | None,
        awaiting: bool = False) -> View:
    """Cancel (or fail) the mission: it releases nothing more, and each of its tasks not
    ended yet is `cancelled` (a running round's end then leaves it so), one transaction.
    `awaiting`: only a mission that awaits approval (a rejection)."""
    def body(pipe: Pipeline) -> View:
        view = _watched(store, pipe, name)
        mission = view.mission
        if awaiting:
            _awaiting(mission)
        if mission.state.is_terminal:
            raise Refused(f"mission {name!r} is {mission.state.value} already")
        pipe.multi()
        _cancel(store, pipe, view, view.tasks.values(), state)
        _set_state(store, pipe, mission, state, reason, mission.state)
        return view

    return store.transaction(body)


def _cancel(store: Store, pipe: Pipeline, view: View, tasks: Iterable[Task],
            state: MissionState) -> None:
    """Queue each of `tasks` not ended yet as `cancelled`, out of any queue."""
    now = utcnow()
    for task in tasks:
        if task.state.is_terminal:
            continue
        task.state = TaskState.CANCELLED
        task.completed_at = task.updated_at = now
        task.blocked_reason = None
        task.result = task.result or f"mission {view.mission.name} {state.value}"
        store.put_task(task, pipe)
        pipe.zrem(keys.role_pending(store.town), task.id)
        store.add_event("task_cancelled", task.assigned_to, pipe=pipe, task=task.id)


def finish(store: Store, name: str, state: MissionState, summary: str | None) -> View:
    """Its conductor ends the mission: `done` only when every task of it is completed
    (Refused naming the others); `failed` cancels those not ended (not the conductor's
    own turn, whose round is ending). One transaction."""
    def body(pipe: Pipeline) -> View:
        view = _watched(store, pipe, name)
        mission = view.mission
        if mission.state.is_terminal:
            raise Refused(f"mission {name!r} is {mission.state.value} already")
        work = {label: view.tasks.get(i) for label, i in mission.tasks.items()}
        if state == MissionState.DONE:
            left = [f"{label} ({t.state.value if t else 'missing'})" for label, t in work.items()
                    if t is None or t.state != TaskState.COMPLETED]
            if left:
                raise Refused(f"mission {name!r} is not done: {len(left)} task(s) not"
                              f" completed: {', '.join(left)}; wait for them (you are woken"
                              " when they end) or finish it `failed`")
        mission.summary = summary
        pipe.multi()
        if state != MissionState.DONE:
            _cancel(store, pipe, view, [t for t in work.values() if t is not None], state)
        _set_state(store, pipe, mission, state, None if state == MissionState.DONE
                   else summary or "its conductor failed it", mission.state)
        return view

    return store.transaction(body)


def add_dependency(store: Store, name: str, task_id: str, after: list[str],
                   dispatch: Dispatch) -> View:
    """A task of the mission not started yet (`blocked`) also waits for `after` (ids of
    its tasks); a cycle is refused naming it, nothing written. One transaction."""
    def body(pipe: Pipeline) -> View:
        pipe.watch(keys.task(store.town, task_id))  # type: ignore[no-untyped-call]
        view = _watched(store, pipe, name)
        mission = view.mission
        if mission.state.is_terminal:
            raise Refused(f"mission {name!r} is {mission.state.value}: its tasks stay as"
                          " they are")
        label = {i: n for n, i in mission.tasks.items()}
        task = view.tasks.get(task_id)
        if task is None or task_id not in label:
            raise InvalidTransition(f"task {task_id[:8]} is no task of mission {name!r}")
        if task.state != TaskState.BLOCKED:
            raise InvalidTransition(f"task {label[task_id]} is {task.state.value}: a"
                                    " dependency is added to a task not started yet only")
        task.after = [*task.after, *(i for i in dict.fromkeys(after) if i not in task.after)]
        graph = {i: tuple(t.after) for i, t in view.tasks.items() if i in label}
        from tinytown.core.plans import find_cycles  # the plan reader: loaded when needed

        for cycle in find_cycles(graph):
            if task_id in cycle:
                names = [label[i] for i in cycle]
                raise DependencyCycle("these dependencies make a cycle: "
                                      + " -> ".join([*names, names[0]]))
        before = mission.state
        pipe.multi()
        store.put_task(task, pipe)
        store.add_event("mission_dependency_added", task.assigned_to, pipe=pipe,
                        mission=name, task=task.id, after=",".join(after))
        _queue(store, pipe, view, dispatch, before)
        return view

    return store.transaction(body)


def set_budget(store: Store, name: str, usd: float | None, dispatch: Dispatch) -> View:
    """A new budget (None: none); a mission held over budget carries on if it allows."""
    def body(pipe: Pipeline) -> View:
        view = _watched(store, pipe, name)
        view.mission.budget_usd = usd
        before = view.mission.state
        if before == MissionState.BLOCKED and view.mission.reason == OVER_BUDGET:
            view.mission.state = MissionState.RUNNING
        pipe.multi()
        _queue(store, pipe, view, dispatch, before)
        return view

    return store.transaction(body)


# --- the dispatcher ---------------------------------------------------------------------


def spent(view: View) -> float:
    return sum(t.usage.cost_usd for t in view.tasks.values() if t.usage is not None)


def _queue(store: Store, pipe: Pipeline, view: View, dispatch: Dispatch,
           before: MissionState, written: frozenset[str] | set[str] = frozenset(),
           quiet: bool = False) -> list[Task]:
    """Queue on `pipe` (after MULTI) the releases, the held tasks' reasons and the
    mission's new state; `written`: tasks the caller writes itself. Returns the tasks
    released. The mission's key is written every time (the WATCH of the next change
    relies on it), unless `quiet` (a look at it) and nothing changed."""
    mission = view.mission
    out: list[Task] = []
    touched = False
    if mission.state.is_terminal or mission.state == MissionState.AWAITING_APPROVAL:
        if not quiet:  # ended, or held until `tt approve`: nothing is released
            mission.updated_at = utcnow()
            pipe.set(keys.mission(store.town, mission.name), mission.to_json())
        return out
    for task, reason in _decide(view):
        if reason is None:
            task.blocked_reason = None
            dispatch(store, pipe, task)  # writes it
            out.append(task)
            store.add_event("mission_released", task.assigned_to, pipe=pipe,
                            mission=mission.name, task=task.id)
        elif task.blocked_reason != reason and task.id not in written:
            task.blocked_reason = reason
            store.put_task(task, pipe)
            touched = True
    woken = conductor_wakes.queue_wake(store, pipe, mission, view.tasks, dispatch)
    if woken is not None:
        out.append(woken)  # a cold conductor is woken for it as for a released task
        touched = True
    state, reason = _state_of(view)
    if quiet and not out and not touched and (state, reason) == (mission.state,
                                                                 mission.reason):
        return out
    _set_state(store, pipe, mission, state, reason, before)
    return out


def _decide(view: View) -> list[tuple[Task, str | None]]:
    """Each held (`blocked`) task with None (release it now) or why it waits."""
    mission, tasks = view.mission, view.tasks
    by_name = {task_id: label for label, task_id in mission.tasks.items()}
    active = sum(1 for i in mission.tasks.values()
                 if (t := tasks.get(i)) is not None and t.state in ACTIVE)
    slots = (mission.parallel - active) if mission.parallel else len(tasks)
    over = mission.budget_usd is not None and spent(view) >= mission.budget_usd
    out: list[tuple[Task, str | None]] = []
    for task_id in mission.tasks.values():
        task = tasks.get(task_id)
        if task is None or task.state != TaskState.BLOCKED:
            continue
        deps = [(d, tasks.get(d)) for d in task.after]
        ended = [by_name.get(d, d[:8]) for d, t in deps
                 if t is None or t.state in (TaskState.FAILED, TaskState.CANCELLED)]
        waiting = [by_name.get(d, d[:8]) for d, t in deps
                   if t is not None and t.state != TaskState.COMPLETED]
        if ended:
            out.append((task, f"{', '.join(ended)} did not complete (`tt task retry` or"
                              " `tt task unblock`)"))
        elif waiting:
            out.append((task, f"waiting for {', '.join(waiting)}"))
        elif over:
            out.append((task, f"mission {OVER_BUDGET}"))
        elif slots <= 0:
            out.append((task, f"waiting for a free slot (parallel {mission.parallel})"))
        else:
            slots -= 1
            task.state = TaskState.ASSIGNED  # what dispatch makes it; counts as active
            out.append((task, None))
    return out


def _state_of(view: View) -> tuple[MissionState, str | None]:
    """The state its tasks make it, its conductor's turns counted."""
    return conductor_wakes.mission_state(view.mission, view.tasks, *_tasks_state(view))


def _tasks_state(view: View) -> tuple[MissionState, str | None]:
    tasks = [view.tasks.get(i) for i in view.mission.tasks.values()]
    if all(t is not None and t.state == TaskState.COMPLETED for t in tasks):
        return MissionState.DONE, None
    held = [t for t in tasks if t is not None and t.state == TaskState.BLOCKED]
    if held and any(t.blocked_reason == f"mission {OVER_BUDGET}" for t in held):
        return MissionState.BLOCKED, OVER_BUDGET
    if any(t is not None and (t.state in ACTIVE or t.state == TaskState.AWAITING_APPROVAL)
           for t in tasks):
        return MissionState.RUNNING, None
    by_id = {task_id: label for label, task_id in view.mission.tasks.items()}
    stuck = [f"{by_id[t.id]} {t.state.value}" for t in tasks
             if t is not None and t.state in (TaskState.FAILED, TaskState.CANCELLED)]
    return MissionState.BLOCKED, ("; ".join(stuck) or "nothing can proceed")


def _set_state(store: Store, pipe: Pipeline, mission: Mission, state: MissionState,
               reason: str | None, before: MissionState) -> None:
    now = utcnow()
    mission.state, mission.reason, mission.updated_at = state, reason, now
    if state.is_terminal and mission.finished_at is None:
        mission.finished_at = now
    pipe.set(keys.mission(store.town, mission.name), mission.to_json())
    if state != before:
        store.add_event(f"mission_{state.value}", None, pipe=pipe, mission=mission.name,
                        reason=reason)
