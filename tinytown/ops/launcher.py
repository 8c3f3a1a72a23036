"""Starting worker and supervisor processes detached from the terminal.

Children get the town's root folder (and REDIS_URL through the environment) and build
their own settings and clients; nothing but plain data crosses the process boundary.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tinytown.db import runtime
from tinytown.db.store import Store
from tinytown.errors import WorkerError
from tinytown.models import Agent
from tinytown.private import private_dir
from tinytown.settings import Settings


def _detached(argv: list[str], log_path: Path, settings: Settings) -> int:
    private_dir(log_path.parent)
    env = dict(os.environ)
    env["TINYTOWN_TOWN_ROOT"] = str(settings.root)
    for name in ("TINYTOWN_AGENT_ID", "TINYTOWN_AGENT_NAME", "TINYTOWN_TASK_ID"):
        env.pop(name, None)  # a worker spawned from inside a round is not that agent
    # via tinytown._detach: the process outlives us and is never our zombie
    done = subprocess.run(
        [sys.executable, "-m", "tinytown._detach", str(log_path), *argv],
        cwd=settings.root, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=30,
    )
    if done.returncode != 0 or not done.stdout.strip().isdigit():
        raise WorkerError(f"could not start {argv[2]}: {done.stderr.strip()[-300:]}")
    return int(done.stdout.strip())


def start_worker(store: Store, settings: Settings, agent: Agent) -> int:
    """Start the agent's worker in the background; returns the pid of the process
    started, on Linux the worker's keeper (`tinytown.keeper`), whose child the worker
    is: the worker's own pid is the one it records in its runtime hash. It carries a
    new launch token: a worker started earlier for the agent (still starting) stands
    down."""
    ensure_supervisor(settings)
    launch = runtime.launching(store, agent.id)
    return _detached(
        [sys.executable, "-m", "tinytown.worker", "--town", str(settings.root),
         "--launch", launch, agent.id],
        settings.logs_dir / agent.name / "worker.log",
        settings,
    )


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
    return _detached(
        [sys.executable, "-m", "tinytown.supervisor", "--town", str(settings.root)],
        settings.logs_dir / "supervisor.log",
        settings,
    )
