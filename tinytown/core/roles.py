"""Which queues an agent consumes: its own, and its role's.

A role's queue `tt.<town>.role.<role>` is consumed by every agent of that role, so
whichever is free takes the next task. Agents with no role fall back to their name
(`reviewer`, `reviewer-2` consume the `reviewer` queue), as the spec's "role_id first,
name matching only when no role is set" says.
"""

from __future__ import annotations

from collections.abc import Collection

from tinytown.core import keys
from tinytown.core.models import Agent


def roles_of(agent: Agent, known: Collection[str]) -> list[str]:
    """The role queues an agent consumes: its role, else a role its name spells."""
    if agent.role_id:
        return [agent.role_id]
    base = agent.name.split("-", 1)[0]
    return [base] if base in known else []


def queues_of(town: str, agent: Agent, known: Collection[str]) -> list[str]:
    """The Celery queues the agent's worker consumes: its own first, then its roles'."""
    return [keys.agent_queue(town, agent.id)] + [
        keys.role_queue(town, role) for role in roles_of(agent, known)
    ]
