"""Host daemons in Redis: the one home of their registration, beat and drain flag, and
of the "look at your agents" nudge a client sends one.

    tt:<town>:hosts         set   names of the hosts that registered
    tt:<town>:host:<name>   hash  machine, pid, max_agents, labels, clis, started, beat,
                                  draining ("1" when set)

A hash of another Redis type is set aside (kept for a human) and read as missing.
"""

from __future__ import annotations

import time
from typing import Any, cast

from tinytown.core import keys
from tinytown.core.errors import WrongType
from tinytown.core.placement import HostInfo
from tinytown.db.connection import text_map, texts
from tinytown.db.store import Store
from tinytown.db.wakeup import celery_message, queue_key

HOST_WAKE_TASK = "tinytown.host.wake"


def _fields(info: HostInfo) -> dict[str, str]:
    return {"machine": info.machine, "pid": str(info.pid), "max_agents": str(info.max_agents),
            "labels": ",".join(info.labels), "clis": ",".join(info.clis),
            "lacks": ",".join(info.lacks),
            "started": f"{info.started:.3f}", "beat": f"{info.beat:.3f}",
            "draining": "1" if info.draining else ""}


def _parse(name: str, raw: dict[str, str]) -> HostInfo:
    def number(field: str) -> float:
        try:
            return float(raw.get(field) or 0)
        except ValueError:
            return 0.0

    def names(field: str) -> list[str]:
        return [x for x in (raw.get(field) or "").split(",") if x]

    return HostInfo(name=name, machine=raw.get("machine", ""), pid=int(number("pid")),
                    max_agents=int(number("max_agents")), labels=names("labels"),
                    clis=names("clis"), lacks=names("lacks"), started=number("started"),
                    beat=number("beat"),
                    draining=bool(raw.get("draining")))


def register(store: Store, info: HostInfo) -> None:
    """The host starts (again): its record anew, draining cleared."""
    key = keys.host(store.town, info.name)
    for _ in range(2):
        try:
            pipe = store.r.pipeline()
            pipe.delete(key)
            pipe.hset(key, mapping=cast(Any, _fields(info)))
            pipe.sadd(keys.hosts(store.town), info.name)
            pipe.execute()
            return
        except WrongType:  # the set of hosts is of another type
            store.set_aside(keys.hosts(store.town))


def beat(store: Store, name: str) -> None:
    store.r.hset(keys.host(store.town, name), "beat", f"{time.time():.3f}")


def read(store: Store, name: str) -> HostInfo | None:
    key = keys.host(store.town, name)
    try:
        raw = text_map(store.r.hgetall(key))
    except WrongType:
        store.set_aside(key)
        return None
    return _parse(name, raw) if raw else None


def read_all(store: Store) -> list[HostInfo]:
    """Every registered host, by name (hosts that unregistered are gone)."""
    try:
        names = sorted(texts(store.r.smembers(keys.hosts(store.town))))
    except WrongType:
        store.set_aside(keys.hosts(store.town))
        return []
    pipe = store.r.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(keys.host(store.town, name))
    found: list[HostInfo] = []
    for name, raw in zip(names, pipe.execute(raise_on_error=False) if names else [],
                         strict=True):
        if isinstance(raw, Exception):
            store.set_aside(keys.host(store.town, name))
        elif raw:
            found.append(_parse(name, text_map(raw)))
    return found


def set_draining(store: Store, name: str, draining: bool) -> None:
    store.r.hset(keys.host(store.town, name), "draining", "1" if draining else "")


def unregister(store: Store, name: str) -> None:
    """A host that stopped cleanly: it is no longer listed."""
    pipe = store.r.pipeline()
    pipe.delete(keys.host(store.town, name))
    pipe.srem(keys.hosts(store.town), name)
    pipe.execute()


def nudge(target: Any, town: str, name: str) -> None:
    """Ask host `name` to look at its agents now (a Celery task on its queue); `target`
    is the client or a pipeline."""
    queue = keys.host_queue(town, name)
    target.lpush(queue_key(town, queue), celery_message(HOST_WAKE_TASK, [], queue))
    target.ltrim(queue_key(town, queue), 0, 9)  # nudges to a host that is gone pile up no more
