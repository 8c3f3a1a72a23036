"""All Redis access for a town's records, inboxes, tasks and events.

The inbox methods live in db/inboxes.py, a mixin of `Store` that keeps this module
under 500 lines; `store.push_message(...)` and the rest are methods of `Store` all the same.

The client is passed in (never a module global). Writers take an optional pipeline so
callers can batch several writes into one atomic MULTI. Read-modify-write of a record
goes through `transaction` (WATCH/MULTI with retry), so concurrent writers never lose
an update.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

from redis.client import Pipeline

from tinytown.core import keys
from tinytown.core.errors import (
    AgentNotFound,
    InvalidRecord,
    NameTaken,
    TaskNotFound,
    TownExists,
    WrongType,
)
from tinytown.core.models import (
    Agent,
    Task,
    WireModel,
    format_timestamp,
    utcnow,
)
from tinytown.db.connection import BLOCK_SECS, TownRedis, text, text_map, texts
from tinytown.db.fence import Fence, watching
from tinytown.db.inboxes import Inboxes

log = logging.getLogger("tinytown")
M = TypeVar("M", bound=WireModel)
R = TypeVar("R")
EVENTS_MAXLEN = 10_000
_SCAN_COUNT = 1000
_UUID_TAIL = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _owns(key: str, record: WireModel) -> bool:
    """A record stored under another id's key (or with no id of its own) is foreign."""
    if getattr(record, "id", None) == key.rsplit(":", 1)[1]:
        return True
    log.warning("skipping %s: the record's id is missing or not the key's", key)
    return False


def event_entry(kind: str, agent_id: str | None = None, **fields: Any) -> dict[str, str]:
    """One event's fields as the stream keeps them (None values left out)."""
    entry = {"kind": kind, "time": format_timestamp(utcnow())}
    if agent_id:
        entry["agent"] = agent_id
    entry.update({k: str(v) for k, v in fields.items() if v is not None})
    return entry


class Store(Inboxes):
    def __init__(self, r: TownRedis, town: str) -> None:
        self.r = r
        self.town = town
        self._events_checked = False  # the events key's type, checked before a write

    # --- generic ----------------------------------------------------------------

    def transaction(self, body: Callable[[Pipeline], R], *watch: str) -> R:
        """Run `body` under WATCH on `watch` until its MULTI commits; returns its value.

        `body` reads in immediate mode, then calls ``pipe.multi()`` and queues writes.
        """
        # redis-py types `body` as returning None; with value_from_callable it returns
        # what `body` returns
        result = self.r.transaction(body, *watch, value_from_callable=True)  # type: ignore[arg-type]
        return cast(R, result)

    def scan_keys(self, pattern: str) -> list[str]:
        return sorted(set(texts(self.r.scan_iter(match=pattern, count=_SCAN_COUNT))))

    def _load_many(self, model: type[M], found: Iterable[str]) -> list[M]:
        """Parse every key's JSON; skip (with a one-line warning) what isn't a record."""
        names = [k for k in found if _UUID_TAIL.search(k)]
        records: list[M] = []
        for i in range(0, len(names), 500):
            chunk = names[i : i + 500]
            for key, raw in zip(chunk, self.r.mget(chunk), strict=True):
                if raw is None:
                    if self.r.exists(key):
                        log.warning("skipping %s: not a string value", key)
                    continue
                try:
                    record = model.from_json(raw)
                except InvalidRecord as exc:
                    log.warning("skipping %s: not a valid %s record (%s)", key, model.__name__, exc)
                    continue
                if _owns(key, record):
                    records.append(record)
        return records

    def _load(self, model: type[M], key: str, raw: str | None, keyed: bool = False) -> M | None:
        """Parse one document; `keyed`: a record whose id must be its key's last part."""
        if raw is None:
            return None
        try:
            record = model.from_json(raw)
        except InvalidRecord:
            log.warning("skipping %s: not a valid %s record", key, model.__name__)
            return None
        return record if not keyed or _owns(key, record) else None

    def _get(self, key: str) -> str | None:
        """GET that treats a value of another Redis type (a foreign key) as no record."""
        try:
            raw = text(self.r.get(key))
        except WrongType:
            log.warning("skipping %s: not a string value", key)
            return None
        return raw

    def set_aside(self, key: str) -> str:
        """Move a key of the wrong Redis type out of the way (kept, renamed): what was
        there is not lost, and the town's own use of the key can go on."""
        target = keys.set_aside(self.town, key, f"{time.time():.6f}")
        kind = self.r.type(key)
        if self.r.renamenx(key, target):
            log.warning("%s is a %s, not what Tinytown keeps there: moved to %s",
                        key, text(kind), target)
        return target

    def ensure_lists(self, *names: str) -> None:
        """Before a MULTI that writes into lists Tinytown keeps (inboxes) and the event
        stream: a key of another type is set aside first, so the MULTI does not fail
        halfway. One round trip for all of them."""
        wanted = {name: "list" for name in names}
        if not self._events_checked:
            wanted[keys.events(self.town)] = "stream"
            self._events_checked = True
        pipe = self.r.pipeline(transaction=False)
        for name in wanted:
            pipe.type(name)
        for (name, kind), found in zip(wanted.items(), pipe.execute(), strict=True):
            if text(found) not in (kind, "none"):
                self.set_aside(name)

    # --- agents -----------------------------------------------------------------

    def get_agent(self, agent_id: str) -> Agent | None:
        key = keys.agent(self.town, agent_id)
        return self._load(Agent, key, self._get(key), keyed=True)

    def parse_agent(self, agent_id: str, raw: str | None) -> Agent | None:
        """An agent record already read (by a script); None if missing or not valid."""
        return self._load(Agent, keys.agent(self.town, agent_id), raw, keyed=True)

    def require_agent(self, agent_id: str) -> Agent:
        agent = self.get_agent(agent_id)
        if agent is None:
            raise AgentNotFound(f"no agent with id {agent_id}")
        return agent

    def list_agents(self) -> list[Agent]:
        agents = self._load_many(Agent, self.scan_keys(keys.agent_pattern(self.town)))
        return sorted(agents, key=lambda a: (a.created_at, a.name))

    def create_agent(self, agent: Agent, pipe: Pipeline | None = None) -> None:
        """Record a new agent; its name is claimed atomically (HSETNX on the names hash)."""
        record = agent.to_json()  # first: a record that cannot be written claims no name
        names_key = keys.names(self.town)
        try:
            claimed = self.r.hsetnx(names_key, agent.name, agent.id)
        except WrongType:  # set aside and rebuilt from the records, then claimed
            self.rebuild_names()
            claimed = self.r.hsetnx(names_key, agent.name, agent.id)
        if not claimed:
            owner = text(self.r.hget(names_key, agent.name))
            if owner and self.r.exists(keys.agent(self.town, owner)):
                raise NameTaken(f"an agent named {agent.name!r} already exists in this town")
            # the name's previous owner is gone (pruned by an older tool): take it over
            self.r.hset(names_key, agent.name, agent.id)
        target = pipe if pipe is not None else self.r.pipeline()
        target.set(keys.agent(self.town, agent.id), record)
        self.add_event("spawned", agent.id, pipe=target, name=agent.name)
        if pipe is None:
            target.execute()

    def update_agent(
        self,
        agent_id: str,
        change: Callable[[Agent], None],
        also: Callable[[Pipeline, Agent], None] | None = None,
        fence: Fence | None = None,
    ) -> Agent:
        """Apply `change` to the stored agent atomically; `also` queues more writes.
        With a worker's `fence`, only while its epoch is current (Fenced otherwise)."""
        key = keys.agent(self.town, agent_id)

        def body(pipe: Pipeline) -> Agent:
            if fence is None:
                raw = pipe.get(key)
            else:
                raw, epoch = pipe.mget(key, fence.key)
                fence.verify(text(epoch))
            if raw is None:
                raise AgentNotFound(f"no agent with id {agent_id}")
            agent = Agent.from_json(raw)
            change(agent)
            pipe.multi()
            pipe.set(key, agent.to_json())
            if also is not None:
                also(pipe, agent)
            return agent

        return self.transaction(body, *watching(fence, key))

    def update_agents(self, agent_ids: list[str], change: Callable[[Agent], None]) -> None:
        """Apply `change` to several agents in one transaction (three round trips in
        all); records gone or unreadable meanwhile are left out."""
        names = [keys.agent(self.town, agent_id) for agent_id in agent_ids]

        def body(pipe: Pipeline) -> None:
            raws = pipe.mget(names)
            pipe.multi()
            for key, raw in zip(names, raws, strict=True):
                agent = self._load(Agent, key, text(raw))
                if agent is not None:
                    change(agent)
                    pipe.set(key, agent.to_json())

        if names:
            self.transaction(body, *names)

    def claim_root(self, where: str, join: bool) -> None:
        """Record that the town was made at `where` (host:folder). A town of this name
        with data made elsewhere is refused (TownExists) unless `join`."""
        owner = text(self.r.get(keys.root(self.town)))
        if owner != where and not join and self._has_data():
            raise TownExists(
                f"a town named {self.town!r} already has data in this Redis"
                f" (made in {owner or 'another folder'}): pick another --name, or add"
                " --join to share it")
        if owner is None or not join:
            self.r.set(keys.root(self.town), where)

    def _has_data(self) -> bool:
        """Whether the town has keys besides its root marker."""
        root = keys.root(self.town)
        return any(key != root for key in
                   texts(self.r.scan_iter(match=f"{keys.prefix(self.town)}*", count=100)))

    def name_owner(self, name: str) -> str | None:
        """The id the names hash gives for `name` (one lookup; the record may be gone).
        A names key of another type is set aside and the hash rebuilt from the records."""
        try:
            return text(self.r.hget(keys.names(self.town), name))
        except WrongType:
            self.rebuild_names()
            return text(self.r.hget(keys.names(self.town), name))

    def rebuild_names(self) -> None:
        """Set a names key of another type aside and write the hash anew from the
        agents' records (it only guards name uniqueness: the records are the truth)."""
        names_key = keys.names(self.town)
        self.set_aside(names_key)
        for agent in self.list_agents():
            self.r.hsetnx(names_key, agent.name, agent.id)

    def set_stop(self, agent_id: str) -> None:
        """The stop flag `tt kill` sets; the agent's next round sees it and stops."""
        self.r.set(keys.stop_flag(self.town, agent_id), "1")

    def clear_stop(self, agent_id: str) -> None:
        self.r.delete(keys.stop_flag(self.town, agent_id))

    def stop_requested(self, agent_id: str) -> bool:
        return bool(self.r.exists(keys.stop_flag(self.town, agent_id)))

    def recent_context(self, agent_id: str, rounds: int) -> list[str]:
        """The agent's last `rounds` context entries (JSON), oldest first."""
        raw = texts(self.r.lrange(keys.context(self.town, agent_id), 0, rounds - 1))
        return list(reversed(raw))

    def delete_agent(self, agent: Agent, pipe: Pipeline | None = None) -> None:
        target = pipe if pipe is not None else self.r.pipeline()
        target.delete(*keys.per_agent_keys(self.town, agent.id))
        target.hdel(keys.names(self.town), agent.name)
        if pipe is None:
            target.execute()

    # --- tasks ------------------------------------------------------------------

    def get_task(self, task_id: str) -> Task | None:
        key = keys.task(self.town, task_id)
        return self._load(Task, key, self._get(key), keyed=True)

    def require_task(self, task_id: str) -> Task:
        task = self.get_task(task_id)
        if task is None:
            raise TaskNotFound(f"no task with id {task_id}")
        return task

    def put_task(self, task: Task, pipe: Pipeline | None = None) -> None:
        target: Any = pipe if pipe is not None else self.r
        target.set(keys.task(self.town, task.id), task.to_json())

    def backlog_ids(self) -> list[str]:
        return texts(self.r.lrange(keys.backlog(self.town), 0, -1))

    def list_tasks(self) -> list[Task]:
        tasks = self._load_many(Task, self.scan_keys(keys.task_pattern(self.town)))
        return sorted(tasks, key=lambda t: t.created_at)

    def watched_task(self, pipe: Pipeline, task_id: str) -> Task:
        """The task as read in a transaction's watching phase; TaskNotFound if none."""
        raw = text(pipe.get(keys.task(self.town, task_id)))
        if raw is None:
            raise TaskNotFound(f"no task with id {task_id}")
        return Task.from_json(raw)

    def update_task(
        self,
        task_id: str,
        change: Callable[[Task], None],
        also: Callable[[Pipeline, Task], None] | None = None,
    ) -> Task:
        key = keys.task(self.town, task_id)

        def body(pipe: Pipeline) -> Task:
            task = self.watched_task(pipe, task_id)
            change(task)
            task.updated_at = utcnow()
            pipe.multi()
            pipe.set(key, task.to_json())
            if also is not None:
                also(pipe, task)
            return task

        return self.transaction(body, key)

    # --- events -----------------------------------------------------------------

    def add_event(
        self, kind: str, agent_id: str | None = None, pipe: Pipeline | None = None, **fields: Any
    ) -> None:
        if not self._events_checked:  # once a process: a failed XADD would fail its MULTI
            self.ensure_lists()
        target: Any = pipe if pipe is not None else self.r
        target.xadd(keys.events(self.town), event_entry(kind, agent_id, **fields),
                    maxlen=EVENTS_MAXLEN, approximate=True)

    def read_events(self, count: int = 20, agent_id: str | None = None) -> list[dict[str, str]]:
        """The newest `count` events (for one agent when given), oldest first."""
        out: list[dict[str, str]] = []
        last = "+"
        while len(out) < count:
            batch = _entries(self.r.xrevrange(keys.events(self.town), max=last,
                                              count=max(count, 100)))
            if not batch:
                break
            for event in batch:
                if event["id"] == last:
                    continue
                if agent_id is None or event.get("agent") == agent_id:
                    out.append(event)
                    if len(out) >= count:
                        break
            last = batch[-1]["id"]
            if len(batch) < max(count, 100):
                break
        return list(reversed(out))

    def follow_events(self, after: str, block_ms: int = 1000) -> list[dict[str, str]]:
        """Events newer than id `after` ("$": from now), waiting up to `block_ms` (at most
        BLOCK_SECS: a longer block would outlast the client's read timeout)."""
        most = int(BLOCK_SECS * 1000)
        block_ms = most if block_ms <= 0 else min(block_ms, most)  # 0 would block for ever
        got: Any = self.r.xread({keys.events(self.town): after}, block=block_ms, count=100)
        return [event for _stream, entries in got or [] for event in _entries(entries)]


def _entries(entries: Any) -> list[dict[str, str]]:
    """Stream entries as events: the entry id as `id`, then its fields."""
    return [{"id": str(text(entry_id)), **text_map(fields)} for entry_id, fields in entries]
