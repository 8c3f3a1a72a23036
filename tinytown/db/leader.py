"""The supervisor's records: the leader lock, the list of running supervisors and the
"one is being launched" flag. One leader per town holds the lock (`SET NX PX`) and
renews it while it still owns it; standbys poll it.
"""

from __future__ import annotations

from tinytown import keys
from tinytown.db import scripts
from tinytown.db.connection import text, texts
from tinytown.db.store import Store
from tinytown.models import utcnow

LAUNCH_FLAG_SECS = 15


def register(store: Store, me: str) -> None:
    store.r.hset(keys.supervisors(store.town), me, utcnow().isoformat())


def unregister(store: Store, me: str) -> None:
    store.r.hdel(keys.supervisors(store.town), me)


def running(store: Store) -> list[str]:
    """The supervisors that say they run ("pid@host"), leaders and standbys."""
    return texts(store.r.hkeys(keys.supervisors(store.town)))


def try_to_lead(store: Store, me: str, ttl_secs: float) -> bool:
    """Take the leader lock if nobody holds it (a launch under way is then over)."""
    if not store.r.set(keys.supervisor_leader(store.town), me, nx=True,
                       px=int(ttl_secs * 1000)):
        return False
    store.r.delete(keys.supervisor_starting(store.town))
    return True


def renew(store: Store, me: str, ttl_secs: float) -> bool:
    """Extend the lock only while `me` still holds it; False when it was lost."""
    return bool(scripts.run(store.r, scripts.RENEW_LOCK, [keys.supervisor_leader(store.town)],
                            [me, int(ttl_secs * 1000)]))


def release(store: Store, me: str) -> None:
    scripts.run(store.r, scripts.RELEASE_LOCK, [keys.supervisor_leader(store.town)], [me])


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
