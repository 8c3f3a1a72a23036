"""The agent state machine: which transitions are allowed, and the one function that
applies a transition atomically (compare-and-set) and records it in the event stream.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from redis.client import Pipeline

from tinytown.errors import InvalidTransition
from tinytown.models import Agent, AgentState, utcnow
from tinytown.store import Store

S = AgentState
_LIVE = {S.STARTING, S.IDLE, S.WORKING, S.PAUSED, S.DRAINING}

# From the spec's diagram, plus what a real process needs: any live state can fail
# (error) or be killed (stopped), and a terminal agent can be restarted (starting).
ALLOWED: dict[AgentState, frozenset[AgentState]] = {
    S.STARTING: frozenset({S.IDLE, S.PAUSED, S.DRAINING, S.STOPPED, S.ERROR}),
    S.IDLE: frozenset({S.WORKING, S.PAUSED, S.DRAINING, S.STOPPED, S.ERROR}),
    S.WORKING: frozenset({S.IDLE, S.PAUSED, S.DRAINING, S.STOPPED, S.ERROR}),
    S.PAUSED: frozenset({S.IDLE, S.DRAINING, S.STOPPED, S.ERROR}),
    S.DRAINING: frozenset({S.COLD, S.STOPPED, S.ERROR}),
    S.COLD: frozenset({S.STARTING}),
    S.STOPPED: frozenset({S.STARTING}),
    S.ERROR: frozenset({S.STARTING, S.IDLE}),  # idle: its worker came back after all
}


ALLOWED_LIVE = frozenset(_LIVE)


def allowed(old: AgentState, new: AgentState) -> bool:
    return new in ALLOWED[old]


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
) -> Agent:
    """Move an agent to `new` if the table (and `expect`, when given) allows it.

    The read, the check and the write happen under WATCH, so two processes racing on
    one agent cannot both win. Raises InvalidTransition naming both states.
    """
    old_state: list[AgentState] = []

    def apply(agent: Agent) -> None:
        old = agent.state
        old_state.append(old)
        if quiet_if_same and old == new:
            return
        if (expect is not None and old not in expect) or not allowed(old, new):
            raise InvalidTransition(
                f"agent {agent.name!r} is {old.value}: cannot change it to {new.value}"
            )
        agent.state = new
        agent.last_active_at = utcnow()
        if change is not None:
            change(agent)

    def record(pipe: Pipeline, agent: Agent) -> None:
        old = old_state[-1]
        if old != new:
            store.add_event(
                "state", agent.id, pipe=pipe, name=agent.name, old=old.value, new=new.value,
                reason=reason,
            )
        if also is not None:
            also(pipe, agent)

    return store.update_agent(agent_id, apply, also=record)
