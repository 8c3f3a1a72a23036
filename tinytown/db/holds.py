"""Agents that Tinytown itself pauses: over a budget, or at a provider's usage limit.

A held agent is `paused` with the reason in its record (`hold`) and in a `state` event,
and a note in the supervisor mailbox. Its work stays queued: the round's messages go
back to the head of its inbox and its task back to `assigned`. A budget hold ends with
`tt resume` (after the budget was raised); a usage-limit hold also ends by itself: its
agent is in `tt:<town>:holds`, scored by the time the limit resets, and the supervisor
resumes it then (`release_due`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import TinytownError
from tinytown.core.models import Agent, AgentState, Message, MessageBody, Task, TaskState, utcnow
from tinytown.core.usage_rules import Usage
from tinytown.db import runtime, states, usage_store
from tinytown.db.connection import text, texts
from tinytown.db.fence import Fence, watching
from tinytown.db.rounds import return_inflight
from tinytown.db.store import Store
from tinytown.db.task_writes import back_to_assigned
from tinytown.db.wakeup import enqueue_round

HOLDABLE = (AgentState.IDLE, AgentState.STARTING, AgentState.WORKING)


def hold(store: Store, agent_id: str, reason: str, task_id: str | None = None,
         resume_at: datetime | None = None, fence: Fence | None = None,
         used: Usage | None = None, number: int = 0,
         session_usage: dict[str, Any] | None = None) -> bool:
    """Pause the agent with `reason`, its round's messages back at the inbox head and
    its task (`task_id`, if running) back to `assigned`, in one transaction; `used`: what
    the round (`number`) that ended at a usage limit used, onto the agent, its task and
    the town, as a finished round's is (`session_usage`: the totals of the session it
    continued, which the next round's are counted from). False when the agent was not
    idle, starting or working (paused or closed meanwhile)."""
    agent_key = keys.agent(store.town, agent_id)
    watch = [agent_key] + ([keys.task(store.town, task_id)] if task_id else [])

    def body(pipe: Pipeline) -> bool:
        raws = [text(x) for x in pipe.mget([*watch, *([fence.key] if fence else [])])]
        if fence is not None:
            fence.verify(raws.pop())
        agent = store.parse_agent(agent_id, raws[0])
        raw_task = raws[1] if task_id else None
        if agent is None or agent.state not in HOLDABLE:
            return False
        old = states.step(agent, AgentState.PAUSED)
        agent.hold, agent.resume_at, agent.current_task = reason, resume_at, None
        task = Task.from_json(raw_task) if raw_task else None
        if session_usage is not None:
            agent.session_usage = session_usage
        if used is not None:
            agent.usage = (agent.usage or Usage()) + used
            if task is not None:
                task.usage = (task.usage or Usage()) + used
        pipe.multi()
        if task is not None and (task.state == TaskState.RUNNING or used is not None):
            if task.state == TaskState.RUNNING:
                back_to_assigned(task)
            task.updated_at = utcnow()
            store.put_task(task, pipe)
        if used is not None:
            usage_store.queue_round(store, pipe, agent, task, number, used)
        pipe.set(agent_key, agent.to_json())
        states.record(store, pipe, agent, old, reason)
        return_inflight(pipe, store.town, agent_id)
        runtime.queue_cli_done(store, pipe, agent_id)
        if resume_at is not None:
            pipe.zadd(keys.holds(store.town), {agent_id: resume_at.timestamp()})
        store.push_message(Message(sender=agent_id, to=keys.SUPERVISOR_ID,
                                   body=MessageBody.informational(
                                       f"{agent.name} is paused: {reason}")), pipe)
        return True

    return store.transaction(body, *watching(fence, *watch))


def clear(agent: Agent) -> None:
    """The agent is resumed: no hold (for `states.transition`'s change)."""
    agent.hold = None
    agent.resume_at = None


def forget(store: Store, pipe: Pipeline, agent_id: str) -> None:
    pipe.zrem(keys.holds(store.town), agent_id)


def release_due(store: Store, now: datetime) -> list[str]:
    """Resume the agents whose usage-limit hold has run out; their ids."""
    found: Any = store.r.zrangebyscore(keys.holds(store.town), "-inf", now.timestamp())
    due = texts(found)  # members only (no scores asked for)
    released = []
    for agent_id in due:
        try:
            states.transition(store, agent_id, AgentState.IDLE, expect=(AgentState.PAUSED,),
                              reason="usage limit reset", change=clear,
                              also=lambda pipe, a: forget(store, pipe, a.id))
        except TinytownError:  # resumed, closed or pruned meanwhile
            store.r.zrem(keys.holds(store.town), agent_id)
            continue
        enqueue_round(store.r, store.town, agent_id, force=True)
        released.append(agent_id)
    return released
