"""Starting a town's worker and supervisor processes from a client, detached from the
terminal (the command lines and the detaching are `tinytown.system.launching`)."""

from __future__ import annotations

from tinytown.core.models import Agent
from tinytown.core.settings import Settings
from tinytown.db import runtime
from tinytown.db.store import Store
from tinytown.system.launching import detached, supervisor_argv, worker_argv


def start_worker(store: Store, settings: Settings, agent: Agent) -> int:
    """Start the agent's worker in the background; returns the pid of the process
    started, on Linux the worker's keeper (`tinytown.system.keeper`), whose child the worker
    is: the worker's own pid is the one it records in its runtime hash. It carries a
    new launch token: a worker started earlier for the agent (still starting) stands
    down."""
    ensure_supervisor(settings)
    launch = runtime.launching(store, agent.id)
    return detached(worker_argv(settings.root, launch, agent.id),
                    settings.logs_dir / agent.name / "worker.log", settings.root)


def ensure_supervisor(settings: Settings) -> int | None:
    """Start the town's supervisor unless one is leading already, whatever the Redis
    (an external one too: without it nobody notices a crashed agent), unless
    `[supervisor] autostart = false`."""
    if not settings.supervisor.autostart:
        return None
    from tinytown.db import leader
    from tinytown.db.connection import connect
    from tinytown.db.store import Store

    client = connect(settings)
    try:
        if not leader.claim_launch(Store(client, settings.town)):
            return None  # one leads, or another command is launching one right now
    finally:
        client.close()
    return start_supervisor(settings)


def start_supervisor(settings: Settings) -> int:
    return detached(supervisor_argv(settings.root), settings.logs_dir / "supervisor.log",
                    settings.root)
