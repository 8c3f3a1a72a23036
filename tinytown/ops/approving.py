"""A person's approval: `tt approve` / `tt reject` of a task that awaits approval (its
`approve` gate) or of a mission that does (`approve = true`, `tt mission start
--approve`). The reference is resolved as a task first, then as a mission's name.

An agent never approves: the MCP server (the agents' tools) has no approve or reject
tool; people approve through the CLI, the REST API and the dashboard. A review's
verdict (`Approvals.review_verdict`, tinytown/ops/reviewing.py) is an agent's or a
person's.
"""

from __future__ import annotations

import getpass

from tinytown import ops
from tinytown.core.errors import MissionNotFound, TaskNotFound, UsageError
from tinytown.core.models import Gates, Mission, Task
from tinytown.ops.context import TownContext
from tinytown.ops.references import resolve, resolve_task

MAX_NOTE_CHARS = 8000


def person() -> str:
    """Who approves from this process (the login name; "unknown" when there is none)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Approvals:
    """`Town`'s approval methods (a base of it, to keep the facade's module small)."""

    context: TownContext

    def approve(self, ref: str, note: str | None = None) -> Task | Mission:
        """Approve a task (completed, its dependents released) or a mission (it runs)
        that awaits approval; `ref`: a task first, then a mission's name."""
        return approve(self.context, ref, note)

    def reject(self, ref: str, note: str | None = None, fail: bool = False
               ) -> Task | Mission:
        """A task awaiting approval back to its agent with `note` (`fail`: failed with
        it); a mission awaiting approval cancelled."""
        return reject(self.context, ref, note, fail)

    def review_verdict(self, task_ref: str, approve: bool, notes: str = "", by: str | None = None
                       ) -> Task:
        """Answer a review (the review task or the task in review; `by`: the answering
        agent, only the review's assignee may; None: a person): ops/reviewing.py."""
        return ops.reviewing.verdict(self.context, task_ref, approve, notes,
                                     resolve(self.context, by).id if by else None)


def gated(task: Task | str, gates: Gates | None) -> Task:
    """The task to assign (from its text), with `gates` when given."""
    task = Task(task) if isinstance(task, str) else task
    if gates is not None:
        task.gates = gates
    return task


def _target(town: TownContext, ref: str) -> Task | Mission:
    from tinytown.db import mission_store

    try:
        return resolve_task(town, ref)
    except TaskNotFound:
        found = mission_store.get(town.store, ref.strip())
        if found is None:
            raise MissionNotFound(f"no task or mission {ref!r} (`tt status` lists what"
                                  " awaits approval)") from None
        return found


def _note(note: str | None) -> str | None:
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise UsageError(f"a note is at most {MAX_NOTE_CHARS} characters")
    return note.strip() or None if note is not None else None


def approve(town: TownContext, ref: str, note: str | None = None, by: str | None = None
            ) -> Task | Mission:
    """Complete a task that awaits approval (its dependents released at once), or let a
    mission that awaits approval run; Refused otherwise."""
    target = _target(town, ref)
    if isinstance(target, Mission):
        return approve_mission(town, target.name, note, by)
    return approve_task(town, target.id, note, by)


def reject(town: TownContext, ref: str, note: str | None = None, fail: bool = False,
           by: str | None = None) -> Task | Mission:
    """Send a task that awaits approval back to its agent (same session, the note as
    its follow-up), or fail it (`fail`); cancel a mission that awaits approval."""
    target = _target(town, ref)
    if isinstance(target, Mission):
        return reject_mission(town, target.name, note, by)
    return reject_task(town, target.id, note, fail, by)


def approve_task(town: TownContext, ref: str, note: str | None = None,
                 by: str | None = None) -> Task:
    from tinytown.db import gate_store

    released: list[Task] = []
    task = gate_store.approve(town.store, resolve_task(town, ref).id, by or person(),
                              _note(note), released)
    if released:
        ops.ordering.wake(town, released)
    return task


def reject_task(town: TownContext, ref: str, note: str | None = None, fail: bool = False,
                by: str | None = None) -> Task:
    from tinytown.db import gate_store

    released: list[Task] = []
    task = gate_store.reject(town.store, resolve_task(town, ref).id, by or person(),
                             _note(note), fail, released)
    if released:
        ops.ordering.wake(town, released)
    if not fail and task.assigned_to:
        agent = town.store.get_agent(task.assigned_to)
        if agent is not None:
            ops.assignments.work_arrived(town, agent, "the task")
    return task


def approve_mission(town: TownContext, name: str, note: str | None = None,
                    by: str | None = None) -> Mission:
    return ops.mission_control.approve(town, name, by or person(), _note(note))


def reject_mission(town: TownContext, name: str, note: str | None = None,
                   by: str | None = None) -> Mission:
    return ops.mission_control.reject(town, name, by or person(), _note(note))
