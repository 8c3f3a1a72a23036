"""What a user types to name an agent or a task, resolved to its record: a name, a
nickname, a full UUID, or a UUID prefix of 4+ characters (ambiguity is refused, never
guessed)."""

from __future__ import annotations

import re
import uuid

from tinytown.core import keys
from tinytown.core.errors import AgentNotFound, AmbiguousReference, TaskNotFound
from tinytown.core.models import Agent, Task
from tinytown.core.validate import RESERVED_NAMES
from tinytown.ops.context import TownContext

_HEX_PREFIX = re.compile(r"^[0-9a-fA-F-]{4,36}$")


def _is_uuid(ref: str) -> bool:
    try:
        return str(uuid.UUID(ref)) == ref.lower()
    except ValueError:
        return False


def resolve(town: TownContext, ref: str) -> Agent:
    """An agent by name, nickname, full UUID or a UUID prefix of 4+ characters."""
    ref = ref.strip()
    if ref.lower() in RESERVED_NAMES or ref == keys.SUPERVISOR_ID:
        return Agent.supervisor()
    if _is_uuid(ref):
        agent = town.store.get_agent(ref.lower())
        if agent is None:
            raise AgentNotFound(f"no agent with id {ref} in town {town.name!r}")
        return agent
    owner = town.store.name_owner(ref)  # the common case: one lookup
    if owner:
        named = town.store.get_agent(owner)
        if named is not None and named.name == ref:
            return named
    agents = town.store.list_agents()
    by_name = [a for a in agents if a.name == ref]
    if by_name:
        return by_name[0]
    for candidates in (
        [a for a in agents if a.display_nickname.lower() == ref.lower()],
        [a for a in agents if _HEX_PREFIX.match(ref) and a.id.startswith(ref.lower())],
    ):
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            listed = ", ".join(
                f"{a.name} ({a.display_nickname}, {a.id[:8]})" for a in candidates
            )
            raise AmbiguousReference(f"{ref!r} matches several agents: {listed}")
    raise AgentNotFound(
        f"no agent {ref!r} in town {town.name!r} (try `tt list` for names and ids)"
    )


def resolve_task(town: TownContext, ref: str) -> Task:
    """A task by full id or a unique prefix of 4+ characters."""
    ref = ref.strip().lower()
    if _is_uuid(ref):
        return town.store.require_task(ref)
    if not _HEX_PREFIX.match(ref):
        raise TaskNotFound(f"no task {ref!r}: give a task id or a prefix of 4+ characters")
    found = [t for t in town.store.list_tasks() if t.id.startswith(ref)]
    if len(found) == 1:
        return found[0]
    if found:
        raise AmbiguousReference(
            f"{ref!r} matches several tasks: {', '.join(t.id for t in found)}"
        )
    raise TaskNotFound(f"no task with id {ref!r} in town {town.name!r}")
