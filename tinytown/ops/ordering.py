"""Dependencies between tasks from a client's side: naming them, retrying a failed
task, unblocking a task whose dependency failed, adding dependencies to a blocked
task, and waking the cold agents a release gave work to. The writes are
`tinytown.db.dependency_store` (one transaction each, `tinytown.db.graph`)."""

from __future__ import annotations

from collections.abc import Iterable

from tinytown.core.errors import Refused, UsageError
from tinytown.core.models import AgentType, Task
from tinytown.db import dependency_store
from tinytown.ops.context import TownContext
from tinytown.ops.references import resolve, resolve_task
from tinytown.ops.starting import start_worker


def resolve_after(town: TownContext, refs: Iterable[str]) -> list[str]:
    """Dependencies as given (full ids or prefixes of 4+ characters) as task ids, in
    order, once each; TaskNotFound for one that names no task (nothing is written)."""
    ids = [resolve_task(town, ref).id for ref in refs if ref.strip()]
    return list(dict.fromkeys(ids))


def wake(town: TownContext, released: list[Task]) -> None:
    """Tasks a release dispatched: a cold agent among theirs wakes, as for new work."""
    if released:
        dependency_store.wake_released(town.store, town.settings, released,
                                   lambda agent: start_worker(town.store, town.settings, agent))


def retry(town: TownContext, ref: str, to: str | None = None, role: str | None = None
          ) -> Task:
    """Run a failed or cancelled task again, for its agent (or role), or for agent
    `to`, or for `role`; the tasks blocked on it wait for it again."""
    if to is not None and role is not None:
        raise UsageError("give --to AGENT or --role ROLE, not both")
    agent_id = None
    if to is not None:
        agent = resolve(town, to)
        if agent.agent_type == AgentType.SUPERVISOR:
            raise UsageError("tasks are assigned to worker agents, not to the supervisor")
        agent_id = agent.id
    if role is not None:
        from tinytown.ops.routing import check_role

        check_role(town, role)
    found = resolve_task(town, ref)
    if agent_id is None and role is None and found.assigned_to and \
            town.store.get_agent(found.assigned_to) is None:
        raise Refused(f"task {found.id[:8]}'s agent is gone (pruned): give --to AGENT or"
                      " --role ROLE")
    task, dispatched = dependency_store.retry(town.store, found.id, agent_id, role)
    if dispatched:
        wake(town, [task])
    return task


def unblock(town: TownContext, ref: str) -> Task:
    """A blocked task goes on without its failed or cancelled dependencies."""
    task, dispatched = dependency_store.unblock(town.store, resolve_task(town, ref).id)
    if dispatched:
        wake(town, [task])
    return task


def add(town: TownContext, ref: str, after: Iterable[str]) -> Task:
    """More dependencies for a blocked task; a cycle is refused, naming it."""
    task = dependency_store.add_dependencies(town.store, resolve_task(town, ref).id,
                                         resolve_after(town, after))
    if task.state.value != "blocked":
        wake(town, [task])
    return task
