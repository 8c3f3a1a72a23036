"""What every operation on a town needs, and no more: its store, its settings, its name.

The ops modules take a `TownContext`, never the `Town`: the `Town` is a facade over
them (tinytown.ops.facade), and an operation that could call back into the facade would
tie every module to every other one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from tinytown.core.models import Agent
from tinytown.core.settings import Settings
from tinytown.db import runtime
from tinytown.db.connection import connect
from tinytown.db.store import Store


@dataclass(frozen=True)
class TownContext:
    store: Store
    settings: Settings

    @property
    def name(self) -> str:
        return self.settings.town

    @classmethod
    def connect(cls, settings: Settings) -> TownContext:
        """A context on a new Redis client (the caller closes it: `close()`)."""
        return cls(Store(connect(settings), settings.town), settings)

    def close(self) -> None:
        self.store.r.close()


def worker_status(town: TownContext, agent: Agent) -> tuple[bool, str]:
    """Whether the agent's worker runs (its pid on this host, else a heartbeat within
    the limit), and its Celery hostname."""
    return runtime.worker_status(town.store, agent,
                                 town.settings.supervisor.heartbeat_timeout_secs)


if TYPE_CHECKING:
    from typing import Protocol

    class HasContext(Protocol):
        """What holds a town's context: a `Town` (the handles take one, as they always
        did, without the ops modules depending on the facade)."""

        @property
        def context(self) -> TownContext: ...
