"""The agent state machine: which transitions are allowed, and the one function that
applies a transition atomically (compare-and-set) and records it in the event stream.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from redis.client import Pipeline

from tinytown.core.errors import InvalidTransition
from tinytown.core.models import Agent, AgentState, utcnow
from tinytown.db.fence import Fence
from tinytown.db.store import Store

_LIVE = {AgentState.STARTING, AgentState.IDLE, AgentState.WORKING, AgentState.PAUSED,
         AgentState.DRAINING}

# From the spec's diagram, plus what a real process needs: any live state can fail
# (error) or be killed (stopped), and a terminal agent can be restarted (starting).
ALLOWED: dict[AgentState, frozenset[AgentState]] = {
    AgentState.STARTING: frozenset({AgentState.IDLE, AgentState.PAUSED, AgentState.DRAINING,
                                    AgentState.STOPPED, AgentState.ERROR}),
    AgentState.IDLE: frozenset({AgentState.WORKING, AgentState.PAUSED, AgentState.DRAINING,
                                AgentState.STOPPED, AgentState.ERROR}),
    AgentState.WORKING: frozenset({AgentState.IDLE, AgentState.PAUSED, AgentState.DRAINING,
                                   AgentState.STOPPED, AgentState.ERROR}),
    AgentState.PAUSED: frozenset({AgentState.IDLE, AgentState.DRAINING, AgentState.STOPPED,
                                  AgentState.ERROR}),
    AgentState.DRAINING: frozenset({AgentState.COLD, AgentState.STOPPED, AgentState.ERROR}),
    AgentState.COLD: frozenset({AgentState.STARTING}),
    AgentState.STOPPED: frozenset({AgentState.STARTING}),
    # idle: its worker came back after all
    AgentState.ERROR: frozenset({AgentState.STARTING, AgentState.IDLE}),
}


ALLOWED_LIVE = frozenset(_LIVE)


def allowed(old: AgentState, new: AgentState) -> bool:
    return new in ALLOWED[old]


def step(
    agent: Agent,
    new: AgentState,
    *,
    expect: Collection[AgentState] | None = None,
    quiet_if_same: bool = False,
) -> AgentState:
    """Check a transition and apply it to an in-memory record; returns the old state.

    For callers that write the record inside a bigger transaction of their own (a
    round's start and end); `transition` is the one-record version.
    """
    old = agent.state
    if quiet_if_same and old == new:
        return old
    if (expect is not None and old not in expect) or not allowed(old, new):
        raise InvalidTransition(
            f"agent {agent.name!r} is {old.value}: cannot change it to {new.value}"
        )
    agent.state = new
    agent.last_active_at = utcnow()
    return old


def event_fields(agent: Agent, old: AgentState, reason: str | None) -> dict[str, Any] | None:
    """The `state` event's fields for a change from `old` to the record's state."""
    if old == agent.state:
        return None
    return {"name": agent.name, "old": old.value, "new": agent.state.value, "reason": reason}


def record(
    store: Store, pipe: Pipeline, agent: Agent, old: AgentState, reason: str | None
) -> None:
    """Queue the `state` event of a change from `old` to the record's state (if any)."""
    fields = event_fields(agent, old, reason)
    if fields is not None:
        store.add_event("state", agent.id, pipe=pipe, **fields)


def transition(
    store: Store,
    agent_id: str,
    new: AgentState,
    *,
    expect: Collection[AgentState] | None = None,
    reason: str | None = None,
    change: Callable[[Agent], None] | None = None,
    also: Callable[[Pipeline, Agent], None] | None = None,
    quiet_if_same: bool = False,
    fence: Fence | None = None,
) -> Agent:
    """Move an agent to `new` if the table (and `expect`, when given) allows it.

    The read, the check and the write happen under WATCH, so two processes racing on
    one agent cannot both win. Raises InvalidTransition naming both states, and
    Fenced when `fence` (a worker's) is stale.
    """
    old_state: list[AgentState] = []

    def apply(agent: Agent) -> None:
        old_state.append(step(agent, new, expect=expect, quiet_if_same=quiet_if_same))
        if change is not None and old_state[-1] != new:
            change(agent)

    def queue_event(pipe: Pipeline, agent: Agent) -> None:
        record(store, pipe, agent, old_state[-1], reason)
        if also is not None:
            also(pipe, agent)

    return store.update_agent(agent_id, apply, also=queue_event, fence=fence)
