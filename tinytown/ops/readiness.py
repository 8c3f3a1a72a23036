"""Whether a town can do its work now: its Redis answers and a supervisor leads.

`tt serve`'s `/readyz` and its metrics read this; a load balancer or an orchestrator
sends no traffic to a server whose town is not ready.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinytown.core.errors import RedisUnreachable
from tinytown.db import leader
from tinytown.ops.context import TownContext


@dataclass(frozen=True)
class Health:
    redis: bool  # the town's Redis answered
    leader: str | None  # the supervisor that leads ("pid@host"), if one does
    reason: str | None  # why the town is not ready (None: it is)

    @property
    def ready(self) -> bool:
        return self.reason is None


def health(town: TownContext) -> Health:
    try:
        town.store.r.ping()
        owner = leader.leader(town.store)
    except RedisUnreachable as exc:
        return Health(redis=False, leader=None, reason=str(exc))
    if owner is None:
        return Health(redis=True, leader=None,
                      reason=f"no supervisor leads town {town.name!r} (`tt supervisor`"
                             " starts one)")
    return Health(redis=True, leader=owner, reason=None)
