"""Work not aimed at one agent: role queues (see tinytown.core.roles) and the backlog.

The backlog is a list of unassigned (`pending`) tasks that people or agents claim.
The writes live in `tinytown.db.task_writes`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tinytown import ops
from tinytown.core import keys
from tinytown.core.errors import TaskNotFound, UsageError
from tinytown.core.models import Agent, AgentState, Task
from tinytown.core.roles import roles_of
from tinytown.db import dependency_store, task_writes
from tinytown.ops.context import TownContext
from tinytown.ops.hosting import wake
from tinytown.ops.references import resolve, resolve_task


def role_members(town: TownContext, role: str) -> list[Agent]:
    known = set(town.settings.known_roles())
    return [a for a in town.store.list_agents() if role in roles_of(a, known)]


def check_role(town: TownContext, role: str) -> None:
    known = town.settings.known_roles()
    if role not in known:
        raise UsageError(f"unknown role {role!r}; known roles: {', '.join(sorted(known))}")


def assign_to_role(town: TownContext, role: str, task: Task, after: Iterable[str] = ()
                   ) -> tuple[Task, list[Agent]]:
    """Queue a task for whichever agent of `role` is free; returns it and the live members.

    With no live member the task waits in the role's queue: it is never dropped. With
    `after` (task ids or prefixes) it is `blocked` until those are completed, then
    queued (tinytown.db.dependency_store).
    """
    check_role(town, role)
    ops.reviewing.check_gates(town, task.gates)
    deps = list(dict.fromkeys(resolve_task(town, ref).id  # a Task's own `after` too
                              for ref in [*task.after, *after] if ref.strip()))
    if deps:
        task.assigned_to, task.role = None, role
        if not dependency_store.submit(town.store, task, deps):
            members = role_members(town, role)
            return task, [a for a in members if not a.state.is_terminal]
    else:
        task_writes.queue_for_role(town.store, task, role)
    members = role_members(town, role)
    live = [a for a in members if not a.state.is_terminal]
    cold = [a for a in members if a.state == AgentState.COLD]
    if not live and cold:  # scale to zero: the one idle longest wakes for it
        sleeper = min(cold, key=lambda a: a.last_active_at)
        if wake(town, sleeper, "a task for its role arrived"):
            live = [town.store.require_agent(sleeper.id)]
    return task, live


# --- backlog ----------------------------------------------------------------------


def backlog_add(town: TownContext, task: Task, role: str | None = None) -> Task:
    if role is not None:
        check_role(town, role)
    return task_writes.add_to_backlog(town.store, task, role)


def backlog_list(town: TownContext) -> list[Task]:
    found = [town.store.get_task(i) for i in town.store.backlog_ids()]
    return [t for t in found if t is not None]


def _backlog_task(town: TownContext, ref: str) -> Task:
    matches = [i for i in town.store.backlog_ids() if i.startswith(ref.strip().lower())]
    if len(matches) != 1:
        raise TaskNotFound(
            f"no backlog task {ref!r}" if not matches else f"{ref!r} matches several backlog tasks"
        )
    return town.store.require_task(matches[0])


def backlog_claim(town: TownContext, task_ref: str, agent_ref: str) -> Task:
    """Assign a backlog task to an agent, atomically. The agent is resolved first, so a
    bad name leaves the backlog untouched."""
    agent = resolve(town, agent_ref)
    if agent.id == keys.SUPERVISOR_ID:
        raise UsageError("backlog tasks are claimed by worker agents, not the supervisor")
    claimed = task_writes.claim(town.store, _backlog_task(town, task_ref).id, agent,
                                from_backlog=True)
    assert claimed is not None  # from_backlog: refused with InvalidTransition instead
    return claimed


def backlog_assign_all(town: TownContext, agent_ref: str) -> list[Task]:
    """Claim every backlog task the agent may take (no role, or one of its roles)."""
    agent = resolve(town, agent_ref)
    mine = set(roles_of(agent, set(town.settings.known_roles())))
    claimed = []
    for task in backlog_list(town):
        role = task.role
        if role is None or role in mine:
            claimed.append(backlog_claim(town, task.id, agent.id))
    return claimed


def backlog_remove(town: TownContext, task_ref: str) -> Task:
    """Take a task out of the backlog; it is kept, as `cancelled`."""
    return task_writes.remove_from_backlog(town.store, _backlog_task(town, task_ref).id)
