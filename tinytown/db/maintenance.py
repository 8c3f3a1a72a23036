"""`tt migrate` (old un-isolated keys into the town) and `tt reset`."""

from __future__ import annotations

import re

from tinytown.core import keys
from tinytown.core.errors import InvalidRecord
from tinytown.core.models import Agent, Message, Task
from tinytown.db.connection import text
from tinytown.db.store import Store, log
from tinytown.db.wakeup import queue_key

_LEGACY = re.compile(
    r"^tt:(agent|inbox|task):[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)


def _valid(store: Store, kind: str, key: str) -> bool:
    try:
        if kind == "inbox":
            for raw in store.r.lrange(key, 0, -1):
                Message.from_json(raw)
        else:
            record = text(store.r.get(key))
            (Agent if kind == "agent" else Task).from_json(record or "")
    except InvalidRecord:  # WrongType (an InvalidRecord): another Redis type
        return False
    return True


def migrate(store: Store, dry_run: bool = False, force: bool = False) -> list[dict[str, str]]:
    """Move tt:{agent,inbox,task}:<id> to tt:<town>:...; never overwrites a key.

    Records that do not parse are left where they are unless `force`. Returns one
    entry per legacy key: from, to, and what happened (moved / would move / skipped).
    """
    report = []
    for kind in keys.LEGACY_KINDS:
        for key in store.scan_keys(keys.legacy_pattern(kind)):
            if not _LEGACY.match(key):
                continue
            target = keys.legacy_to_town(store.town, key)
            entry = {"from": key, "to": target}
            if store.r.exists(target):
                entry["action"] = "skipped: target exists"
            elif not force and not _valid(store, kind, key):
                entry["action"] = "skipped: not a valid record (use --force to move it anyway)"
            elif dry_run:
                taken = _taken_name(store, key) if kind == "agent" else None
                entry["action"] = f"skipped: name {taken!r} taken" if taken else "would move"
            else:
                entry["action"] = _move(store, kind, key, target)
            report.append(entry)
    return report


def _taken_name(store: Store, key: str) -> str | None:
    """The legacy agent's name when another agent of the town already has it."""
    try:
        agent = Agent.from_json(store.r.get(key) or "")
    except InvalidRecord:
        return None
    owner = store.r.hget(keys.names(store.town), agent.name)
    return agent.name if owner and owner != agent.id else None


def _move(store: Store, kind: str, key: str, target: str) -> str:
    if kind == "agent":
        try:
            agent = Agent.from_json(store.r.get(key) or "")
        except InvalidRecord:  # --force: moved as it is
            agent = None
        if agent is not None and not store.r.hsetnx(keys.names(store.town), agent.name, agent.id):
            log.warning("not moving %s: the town already has an agent named %r", key, agent.name)
            return f"skipped: name {agent.name!r} taken"
    if not store.r.renamenx(key, target):
        return "skipped: target exists"
    return "moved"


def reset(store: Store, force: bool = False, agents_only: bool = False) -> list[str]:
    """Delete the town's keys (only agents, inboxes and their runtime keys with
    agents_only). Without `force` nothing is deleted: the list says what would be."""
    town = store.town
    if agents_only:
        doomed = set(store.scan_keys(keys.agent_pattern(town)))
        for kind in ("inbox", "inflight", "stop", "wake", "runtime", "context"):
            doomed.update(store.scan_keys(f"{keys.prefix(town)}{kind}:*"))
        # the agents' Celery queues: round jobs for agents that are gone
        doomed.update(store.scan_keys(queue_key(town, keys.agent_queue(town, "*"))))
        doomed.add(keys.names(town))
    else:
        doomed = set(store.scan_keys(f"{keys.prefix(town)}*"))
    doomed = {k for k in doomed if store.r.exists(k)}
    if force and doomed:
        ordered = sorted(doomed)
        for i in range(0, len(ordered), 500):
            store.r.delete(*ordered[i : i + 500])
    return sorted(doomed)
