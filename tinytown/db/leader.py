"""The supervisor's records: the leader lock, the list of running supervisors and the
"one is being launched" flag. One leader per town holds the lock (`SET NX PX`) and
renews it while it still owns it; standbys poll it.
"""

from __future__ import annotations

import time

import redis

from tinytown.core import keys
from tinytown.core.errors import InvalidRecord
from tinytown.core.models import utcnow
from tinytown.db import scripts
from tinytown.db.connection import text, texts
from tinytown.db.store import Store
from tinytown.system.processes import pid_alive

LAUNCH_FLAG_SECS = 15
LOCK_TTL_SECS = 4.0  # a standby takes over within this (plus its poll) of a leader's death


def register(store: Store, me: str) -> None:
    """`me` ("pid@host") runs; entries of this host's supervisors that died without
    unregistering (SIGKILL) are dropped on the way."""
    prune_dead(store, me.partition("@")[2])
    store.r.hset(keys.supervisors(store.town), me, utcnow().isoformat())


def prune_dead(store: Store, host: str) -> None:
    """Drop the entries of supervisors on `host` (this machine) whose process is gone."""
    dead = [owner for owner in running(store)
            if owner.partition("@")[2] == host
            and not (owner.partition("@")[0].isdigit() and pid_alive(int(owner.partition("@")[0])))]
    if dead:
        store.r.hdel(keys.supervisors(store.town), *dead)


def unregister(store: Store, me: str) -> None:
    store.r.hdel(keys.supervisors(store.town), me)


def running(store: Store) -> list[str]:
    """The supervisors that say they run ("pid@host"), leaders and standbys."""
    return texts(store.r.hkeys(keys.supervisors(store.town)))


def try_to_lead(store: Store, me: str, ttl_secs: float) -> bool:
    """Take the leader lock if nobody holds it, or keep it if `me` holds it already (a
    launch under way is then over). A lock key of another Redis type is reported and
    left alone: nobody leads until it is removed."""
    got = scripts.run(store.r, scripts.ACQUIRE_LOCK, [keys.supervisor_leader(store.town)],
                      [me, int(ttl_secs * 1000)])
    if got == -1:
        raise InvalidRecord(f"{keys.supervisor_leader(store.town)} is not a string:"
                            " remove it so that a supervisor can lead")
    if got != 1:
        return False
    store.r.delete(keys.supervisor_starting(store.town))
    return True


def renew(store: Store, me: str, ttl_secs: float) -> bool:
    """Extend the lock only while `me` still holds it; False when it was lost."""
    return bool(scripts.run(store.r, scripts.RENEW_LOCK, [keys.supervisor_leader(store.town)],
                            [me, int(ttl_secs * 1000)]))


def release(store: Store, me: str) -> None:
    scripts.run(store.r, scripts.RELEASE_LOCK, [keys.supervisor_leader(store.town)], [me])


def redis_started_at(store: Store) -> float | None:
    """When the Redis server started (Unix seconds), from its uptime; None when it does
    not say (INFO refused by a managed Redis). Beats older than that could not be
    written while it was down."""
    try:
        uptime = store.r.info("server").get("uptime_in_seconds")
    except redis.ResponseError:
        return None
    return time.time() - float(uptime) if isinstance(uptime, int | float) else None


def leader(store: Store) -> str | None:
    """Who leads ("pid@host"), or None."""
    return text(store.r.get(keys.supervisor_leader(store.town)))


def claim_launch(store: Store) -> bool:
    """True when no supervisor leads and nobody else is launching one: the caller
    should launch it (the flag expires in case the launch fails)."""
    if store.r.exists(keys.supervisor_leader(store.town)):
        return False
    return bool(store.r.set(keys.supervisor_starting(store.town), "1", nx=True,
                            ex=LAUNCH_FLAG_SECS))
