"""Work not aimed at one agent: role queues and the backlog.

A role's queue `tt.<town>.role.<role>` is consumed by every agent of that role, so
whichever is free takes the next task, on any machine. Agents with no role fall back
to their name (`reviewer`, `reviewer-2` consume the `reviewer` queue), as the spec's
"role_id first, name matching only when no role is set" says.

The backlog is a list of unassigned (`pending`) tasks that people or agents claim.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.client import Pipeline

from tinytown import keys
from tinytown.errors import InvalidTransition, TaskNotFound, UsageError
from tinytown.models import Agent, Message, MessageType, Task, TaskState, utcnow
from tinytown.wakeup import enqueue_round, enqueue_task_job

if TYPE_CHECKING:
    from tinytown.town import Town


def roles_of(agent: Agent, known: set[str]) -> list[str]:
    """The role queues an agent consumes: its role, else a role its name spells."""
    if agent.role_id:
        return [agent.role_id]
    base = agent.name.split("-", 1)[0]
    return [base] if base in known else []


def role_members(town: Town, role: str) -> list[Agent]:
    known = set(town.settings.known_roles())
    return [a for a in town.list_agents() if role in roles_of(a, known)]


def _check_role(town: Town, role: str) -> None:
    known = town.settings.known_roles()
    if role not in known:
        raise UsageError(f"unknown role {role!r}; known roles: {', '.join(sorted(known))}")


def assign_to_role(town: Town, role: str, task: Task) -> tuple[Task, list[Agent]]:
    """Queue a task for whichever agent of `role` is free; returns it and the live members.

    With no live member the task waits in the role's queue: it is never dropped.
    """
    _check_role(town, role)
    task.state = TaskState.PENDING
    task.assigned_to = None
    task.extra["role"] = role
    pipe = town.redis.pipeline()
    town.store.put_task(task, pipe)
    enqueue_task_job(pipe, town.name, keys.role_queue(town.name, role), task.id)
    town.store.add_event("queued", None, pipe=pipe, task=task.id, role=role)
    pipe.execute()
    live = [a for a in role_members(town, role) if not a.state.is_terminal]
    return task, live


# --- backlog ----------------------------------------------------------------------


def backlog_add(town: Town, task: Task, role: str | None = None) -> Task:
    if role is not None:
        _check_role(town, role)
        task.extra["role"] = role
    task.state = TaskState.PENDING
    task.assigned_to = None
    pipe = town.redis.pipeline()
    town.store.put_task(task, pipe)
    pipe.rpush(keys.backlog(town.name), task.id)
    town.store.add_event("backlog_added", None, pipe=pipe, task=task.id, role=role)
    pipe.execute()
    return task


def backlog_list(town: Town) -> list[Task]:
    ids = town.redis.lrange(keys.backlog(town.name), 0, -1)
    tasks = [town.store.get_task(i) for i in ids]
    return [t for t in tasks if t is not None]


def _backlog_task(town: Town, ref: str) -> Task:
    ids = town.redis.lrange(keys.backlog(town.name), 0, -1)
    matches = [i for i in ids if i.startswith(ref.strip().lower())]
    if len(matches) != 1:
        raise TaskNotFound(
            f"no backlog task {ref!r}" if not matches else f"{ref!r} matches several backlog tasks"
        )
    return town.store.require_task(matches[0])


def backlog_claim(town: Town, task_ref: str, agent_ref: str) -> Task:
    """Assign a backlog task to an agent, atomically. The agent is resolved first, so a
    bad name leaves the backlog untouched."""
    agent = town.resolve(agent_ref)
    if agent.id == keys.SUPERVISOR_ID:
        raise UsageError("backlog tasks are claimed by worker agents, not the supervisor")
    task_id = _backlog_task(town, task_ref).id
    task_key = keys.task(town.name, task_id)
    backlog_key = keys.backlog(town.name)

    def claim(pipe: Pipeline) -> Task:
        raw = pipe.get(task_key)
        if raw is None:
            raise TaskNotFound(f"no task with id {task_id}")
        task = Task.from_json(raw)
        if task.state != TaskState.PENDING or pipe.lpos(backlog_key, task_id) is None:
            raise InvalidTransition(f"task {task_id} is no longer in the backlog")
        task.state = TaskState.ASSIGNED
        task.assigned_to = agent.id
        task.updated_at = utcnow()
        message = Message(sender=keys.SUPERVISOR_ID, to=agent.id,
                          body=MessageType.task_assign(task.id))
        pipe.multi()
        pipe.lrem(backlog_key, 1, task_id)
        town.store.put_task(task, pipe)
        town.store.push_message(message, pipe)
        town.store.add_event("assigned", agent.id, pipe=pipe, task=task.id, name=agent.name)
        enqueue_round(pipe, town.name, agent.id)
        return task

    return town.store.transaction(claim, task_key, backlog_key)


def backlog_assign_all(town: Town, agent_ref: str) -> list[Task]:
    """Claim every backlog task the agent may take (no role, or one of its roles)."""
    agent = town.resolve(agent_ref)
    mine = set(roles_of(agent, set(town.settings.known_roles())))
    claimed = []
    for task in backlog_list(town):
        role = task.extra.get("role")
        if role is None or role in mine:
            claimed.append(backlog_claim(town, task.id, agent.id))
    return claimed


def backlog_remove(town: Town, task_ref: str) -> Task:
    """Take a task out of the backlog; it is kept, as `cancelled`."""
    task = _backlog_task(town, task_ref)
    town.redis.lrem(keys.backlog(town.name), 1, task.id)
    return town.cancel_task(task.id)
