"""A worker's runtime hash `tt:<town>:runtime:<agent-id>`: the one home of its writes.

Fields: `pid`, `host`, `hostname` (Celery's name@host), `started_at`, `epoch` (the
fencing token of the worker that holds the agent, see `tinytown.db.fence`), `beat`
(the worker's own heartbeat, Unix seconds: it goes on through a warm shutdown, when
Celery's heartbeats have stopped), `launch` (the token of the newest worker start: a
worker started for an older one does not serve the agent), `launched`
(`<launch>:<pid>@<machine>`: the process the supervisor started for that launch, so a
start that dies before its worker records itself is seen: `failed_start`), and while a round runs
the CLI, `cli_pgid` and `round`. The worker writes it, each write checked against its
epoch; recovery, restart and `tt down` read it to find (and end) the processes on
their own host.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from tinytown.core import keys
from tinytown.core.errors import LeaseHeld, WrongType
from tinytown.core.models import Agent, utcnow
from tinytown.db import scripts
from tinytown.db.connection import text, text_map
from tinytown.db.fence import Fence
from tinytown.db.store import Store
from tinytown.system.processes import pid_alive

# what describes a live (or starting) process, not a past one: forgotten as it exits
PROCESS_FIELDS = ("pid", "cli_pgid", "launched")


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


def launched(store: Store, agent_id: str, launch: str, pid: int) -> None:
    """Record the process started for `launch` (its pid on this machine)."""
    store.r.hset(keys.runtime(store.town, agent_id), "launched",
                 f"{launch}:{pid}@{socket.gethostname()}")


def failed_start(launch: str | None, started: str | None) -> bool:
    """The newest launch's process (`launched`, on this machine) has exited: with no
    worker pid recorded, the start failed (e.g. Redis was away as it booted) and the
    agent would wait in `starting` for a worker that never comes."""
    token, _, where = (started or "").partition(":")
    pid, _, host = where.partition("@")
    return bool(launch) and token == launch and host == socket.gethostname() and \
        pid.isdigit() and not pid_alive(int(pid))


def current_launch(store: Store, agent_id: str) -> str | None:
    return text(store.r.hget(keys.runtime(store.town, agent_id), "launch"))


def holder(rt: dict[str, str], lease_secs: float) -> str | None:
    """Who serves the agent, as the hash `rt` says, if that worker still lives: its pid
    answers on this host; elsewhere its beat within `lease_secs` does."""
    pid, host = rt.get("pid", ""), rt.get("host", "")
    if not pid.isdigit():
        return None
    if host == socket.gethostname():
        alive = int(pid) != os.getpid() and pid_alive(int(pid))
    else:
        last = beat_time(rt.get("beat")) or _iso_time(rt.get("started_at"))
        alive = last is not None and (utcnow() - last).total_seconds() <= lease_secs
    return f"worker pid {pid} on {host or 'an unknown host'}" if alive else None


def refusal(serving: str) -> str:
    """Why a second worker does not start, and what to do."""
    return (f"{serving} serves this agent: stop it first (`tt kill`), or wait until it is"
            " declared dead")


def _iso_time(value: str | None) -> datetime | None:
    """A hash written before the worker's own beat: when it started, as a time."""
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def acquire(store: Store, agent_id: str, hostname: str, launch: str, lease_secs: float
            ) -> Fence:
    """This process takes the agent over: a new epoch, and the hash describes it alone.

    Raises LeaseHeld while another worker serves the agent (see `holder`).
    """
    key, epoch_key = keys.runtime(store.town, agent_id), keys.epoch(store.town, agent_id)
    for _ in range(5):
        rt = read(store, agent_id)
        try:
            current = text(store.r.get(epoch_key)) or ""
        except WrongType:
            current = "?"  # the script refuses it too, and it is set aside below
        serving = holder(rt, lease_secs)
        if serving is not None:
            raise LeaseHeld(refusal(serving))
        fields = {"pid": os.getpid(), "host": socket.gethostname(), "hostname": hostname,
                  "started_at": utcnow().isoformat(), "launch": launch,
                  "beat": f"{time.time():.3f}"}
        got = int(scripts.run(store.r, scripts.ACQUIRE_LEASE, [epoch_key, key],
                              [current, *(x for kv in fields.items() for x in kv)]))
        if got > 0:
            return Fence(epoch_key, got)
        if got == -1:
            store.set_aside(epoch_key)
        elif got == -2:
            store.set_aside(key)
    raise LeaseHeld("other worker starts keep taking this agent over: try again")


def beat(store: Store, fence: Fence, agent_id: str) -> bool:
    """The worker is alive (written every heartbeat interval by the worker itself);
    False when its epoch is stale (nothing written)."""
    return _fenced(store, fence, agent_id, "set", "beat", f"{time.time():.3f}")


def _fenced(store: Store, fence: Fence, agent_id: str, op: str, *args: Any) -> bool:
    """A write to the hash, checked against the writer's epoch (a wrong-typed hash is
    set aside and the write made again); False when the epoch is stale."""
    key = keys.runtime(store.town, agent_id)
    for _ in range(2):
        got = int(scripts.run(store.r, scripts.FENCED_HASH, [fence.key, key],
                              [fence.token, op, *args]))
        if got != -1:
            return got == 1
        store.set_aside(key)
    return False


def beat_time(value: str | None) -> datetime | None:
    """A `beat` field as read, as a time (None when absent or not a number)."""
    try:
        return datetime.fromtimestamp(float(value), UTC) if value else None
    except (ValueError, OverflowError, OSError):
        return None


def cli_started(store: Store, fence: Fence, agent_id: str, pgid: int, round_number: int
                ) -> bool:
    """The round's CLI runs as group `pgid`; False when the epoch is stale."""
    return _fenced(store, fence, agent_id, "set", "cli_pgid", pgid, "round", round_number)


def forget_mine(store: Store, fence: Fence, agent_id: str) -> bool:
    """The worker exits: its processes are gone, unless a newer worker holds the agent
    (False: nothing written)."""
    return _fenced(store, fence, agent_id, "del", *PROCESS_FIELDS)


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
