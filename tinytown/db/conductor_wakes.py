"""Waking a mission's conductor, inside the mission's dispatcher (tinytown.db.mission_store
`_queue`): the same transaction as the task ending that calls for it.

The conductor is woken — a task of its own, `task_assign` in its inbox, so its CLI
continues the same session — when a task of its mission failed or was cancelled, or
when the mission would otherwise sit idle (nothing running, nothing released) with
completed tasks it has not heard of. Never while one of its turns is open (its first
task, the goal, or an earlier wake-up not finished): what ends meanwhile is told at the
next wake-up, which the end of that turn itself queues.

Exactly once: the mission records each task ending it told the conductor of
(`reported`: task id -> "state@completed_at"), in the same MULTI as the wake-up. A
completion re-recorded after a kill, or a look at the mission, finds nothing new; a
task retried and ending again is a new ending (a new `completed_at`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from redis.client import Pipeline

from tinytown.core import conductor_briefs
from tinytown.core.enums import MissionState, Priority, TaskState
from tinytown.core.models import Mission, Task, format_timestamp
from tinytown.db.store import Store

Dispatch = Callable[[Store, Pipeline, Task], None]
ACTIVE = (TaskState.PENDING, TaskState.ASSIGNED, TaskState.RUNNING)
ENDED_BADLY = (TaskState.FAILED, TaskState.CANCELLED)
CONDUCTOR_TAG = "conductor"


def stamp(task: Task) -> str:
    """One ending of a task: its state and when it ended."""
    when = format_timestamp(task.completed_at) if task.completed_at else "-"
    return f"{task.state.value}@{when}"


def turn_open(mission: Mission, tasks: Mapping[str, Task]) -> bool:
    """Whether one of the conductor's turns (tasks) is not finished yet."""
    return any((t := tasks.get(i)) is not None and not t.state.is_terminal
               for i in mission.conductor_tasks)


def conductor_task(mission: Mission, text: str) -> Task:
    """A task for the mission's conductor (its first, or a wake-up), not yet written."""
    assert mission.conductor is not None
    return Task(text, assigned_to=mission.conductor, mission=mission.name,
                priority=Priority.HIGH, tags=[f"mission:{mission.name}", CONDUCTOR_TAG])


def queue_wake(store: Store, pipe: Pipeline, mission: Mission, tasks: dict[str, Task],
               dispatch: Dispatch) -> Task | None:
    """After MULTI, once the dispatcher released what it could: queue a wake-up for
    the conductor when one is due (see the module's docstring); the task it got, or
    None. The caller writes the mission (its `reported` and `conductor_tasks`)."""
    if mission.conductor is None or mission.state.is_terminal or turn_open(mission, tasks):
        return None
    work = [(label, t) for label, i in mission.tasks.items() if (t := tasks.get(i)) is not None]
    new = [(label, t) for label, t in work if (t.state in ENDED_BADLY
                                               or t.state == TaskState.COMPLETED)
           and mission.reported.get(t.id) != stamp(t)]
    failed = [(label, t) for label, t in new if t.state in ENDED_BADLY]
    done = [(label, t) for label, t in new if t.state == TaskState.COMPLETED]
    idle = not any(t.state in ACTIVE for _, t in work)
    if not failed and not (idle and done):
        return None
    wake = conductor_task(mission, conductor_briefs.wake(mission.name, failed, done, idle))
    for _, t in new:
        mission.reported[t.id] = stamp(t)
    mission.conductor_tasks.append(wake.id)
    tasks[wake.id] = wake
    dispatch(store, pipe, wake)  # writes it: assigned, in the conductor's inbox, woken
    store.add_event("mission_conductor_woken", mission.conductor, pipe=pipe,
                    mission=mission.name, task=wake.id, failed=len(failed), done=len(done))
    return wake


def mission_state(mission: Mission, tasks: Mapping[str, Task], found: MissionState,
          reason: str | None) -> tuple[MissionState, str | None]:
    """The mission's state as its tasks alone make it (`found`, `reason`), with its
    conductor's turns counted: not `done` while it decides (nor `blocked` on a task
    that failed: it decides about that), `planning` until it added a task, `blocked`
    when its last turn failed."""
    if mission.conductor is None:
        return found, reason
    deciding = turn_open(mission, tasks)
    last = tasks.get(mission.conductor_tasks[-1]) if mission.conductor_tasks else None
    turn_failed = (not deciding and last is not None and last.state in ENDED_BADLY)
    if not mission.tasks:
        if deciding:
            return MissionState.PLANNING, None
        if turn_failed:
            return MissionState.BLOCKED, _failed_turn(last)
        return MissionState.BLOCKED, "its conductor planned no tasks"
    if deciding and found in (MissionState.DONE, MissionState.BLOCKED) \
            and reason != "over budget":  # mission_store.OVER_BUDGET
        return MissionState.RUNNING, None
    if turn_failed and found in (MissionState.DONE, MissionState.BLOCKED):
        return MissionState.BLOCKED, _failed_turn(last)
    return found, reason


def _failed_turn(task: Task | None) -> str:
    assert task is not None
    return (f"its conductor's turn {task.state.value} (`tt task retry {task.id[:8]}` runs"
            " it again)")
