"""A worker's runtime hash `tt:<town>:runtime:<agent-id>`: the one home of its writes.

Fields: `pid`, `host`, `hostname` (Celery's name@host), `started_at`, `beat` (the
worker's own heartbeat, Unix seconds: it goes on through a warm shutdown, when Celery's
heartbeats have stopped), `launch` (the
token of the newest worker start: a worker started for an older one does not serve
the agent), and while a round runs the CLI, `cli_pgid` and `round`. The worker writes
it; recovery, restart and `tt down` read it to find (and end) the processes on their
own host.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from tinytown import keys
from tinytown.db.connection import text, text_map
from tinytown.db.store import Store
from tinytown.errors import WrongType
from tinytown.models import Agent, utcnow
from tinytown.processes import pid_alive

PROCESS_FIELDS = ("pid", "cli_pgid")  # what describes a live process, not a past one


def read(store: Store, agent_id: str) -> dict[str, str]:
    """The hash as read ({} when missing; one of another type is set aside)."""
    try:
        return text_map(store.r.hgetall(keys.runtime(store.town, agent_id)))
    except WrongType:
        store.set_aside(keys.runtime(store.town, agent_id))
        return {}


def read_many(store: Store, agent_ids: list[str], *fields: str) -> list[list[str | None]]:
    """`fields` of several agents' hashes in one round trip."""
    pipe = store.r.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hmget(keys.runtime(store.town, agent_id), *fields)
    got = pipe.execute(raise_on_error=False) if agent_ids else []
    out: list[list[str | None]] = []
    for agent_id, values in zip(agent_ids, got, strict=True):
        if isinstance(values, Exception):  # another Redis type: set aside, read as empty
            store.set_aside(keys.runtime(store.town, agent_id))
            out.append([None] * len(fields))
        else:
            out.append([text(value) for value in values])
    return out


def launching(store: Store, agent_id: str) -> str:
    """A worker is about to be started for the agent: its launch token, which makes any
    worker started before it stand down."""
    token = uuid.uuid4().hex
    store.r.hset(keys.runtime(store.town, agent_id), "launch", token)
    return token


def current_launch(store: Store, agent_id: str) -> str | None:
    return text(store.r.hget(keys.runtime(store.town, agent_id), "launch"))


def started(store: Store, agent_id: str, hostname: str, launch: str) -> None:
    """A new worker process serves the agent: the hash describes it alone."""
    key = keys.runtime(store.town, agent_id)
    pipe = store.r.pipeline()
    pipe.delete(key)
    pipe.hset(key, mapping={"pid": os.getpid(), "host": socket.gethostname(),
                            "hostname": hostname, "started_at": utcnow().isoformat(),
                            "launch": launch})
    pipe.execute()


def beat(store: Store, agent_id: str) -> None:
    """The worker is alive (written every heartbeat interval by the worker itself)."""
    store.r.hset(keys.runtime(store.town, agent_id), "beat", f"{time.time():.3f}")


def beat_time(value: str | None) -> datetime | None:
    """A `beat` field as read, as a time (None when absent or not a number)."""
    try:
        return datetime.fromtimestamp(float(value), UTC) if value else None
    except (ValueError, OverflowError, OSError):
        return None


def cli_started(store: Store, agent_id: str, pgid: int, round_number: int) -> None:
    store.r.hset(keys.runtime(store.town, agent_id),
                 mapping={"cli_pgid": pgid, "round": round_number})


def queue_cli_done(store: Store, pipe: Any, agent_id: str) -> None:
    """Queue on `pipe`: the round's CLI is over."""
    pipe.hdel(keys.runtime(store.town, agent_id), "cli_pgid")


def forget_processes(store: Store, agent_id: str, pipe: Any = None) -> None:
    """The recorded worker and CLI are gone (or being replaced): a dead pid must not
    make the supervisor think a new worker died."""
    target: Any = pipe if pipe is not None else store.r
    target.hdel(keys.runtime(store.town, agent_id), *PROCESS_FIELDS)


def worker_status(store: Store, agent: Agent, heartbeat_timeout: float) -> tuple[bool, str]:
    """Whether the agent's worker runs, and its Celery hostname.

    On this host the pid answers; elsewhere, a heartbeat within the limit does.
    """
    rt = read(store, agent.id)
    hostname = rt.get("hostname") or f"{agent.name}@{socket.gethostname()}"
    if not rt.get("pid"):
        return False, hostname
    if rt.get("host") == socket.gethostname():
        return pid_alive(int(rt["pid"])), hostname
    silent = (utcnow() - agent.last_heartbeat).total_seconds()
    return silent <= heartbeat_timeout, hostname


def local_pid(store: Store, agent_id: str) -> int | None:
    """The worker's pid when it runs on this host (alive or not)."""
    rt = read(store, agent_id)
    if rt.get("host") == socket.gethostname() and rt.get("pid", "").isdigit():
        return int(rt["pid"])
    return None
