"""An agent worker's start-up: the Celery app, its round tasks and its signals.

The round tasks are registered here, on the app this process runs, bound to the one
`WorkerRuntime` it serves: nothing reaches the runtime through a module global, and
`tinytown.celery_app` stays configuration only. Run it with `tt worker AGENT` or
`python -m tinytown.worker --town ROOT AGENT_ID`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tinytown.core.errors import EXIT_REDIS_UNREACHABLE, RedisUnreachable
from tinytown.core.settings import Settings
from tinytown.db.connection import connect
from tinytown.db.store import Store
from tinytown.db.wakeup import ROUND_TASK, TASK_TASK
from tinytown.system.private import go_private
from tinytown.worker.lifecycle import StandDown, WorkerRuntime

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("tinytown.worker")


def worker_flags(queues: list[str], hostname: str, heartbeat: int, logfile: Path) -> list[str]:
    """`celery worker` arguments of an agent: one consumer thread, prefetch 1, events
    on, no gossip or mingle (they cost every worker CPU per other worker)."""
    return [
        "worker",
        "--queues", ",".join(queues),
        "--hostname", hostname,
        "--pool", "threads",
        "--concurrency", "1",
        "--prefetch-multiplier", "1",
        "--without-gossip",
        "--without-mingle",
        "--task-events",
        "--heartbeat-interval", str(heartbeat),
        "--loglevel", "INFO",
        "--logfile", str(logfile),
    ]


def register_tasks(app: Celery, runtime: WorkerRuntime) -> None:
    """`tinytown.round` and `tinytown.task` on `app`, both run by `runtime`."""

    @app.task(name=ROUND_TASK, acks_late=True, reject_on_worker_lost=True)
    def round_task(agent_id: str) -> dict[str, Any] | None:
        """One round for an agent (a wake-up: the inbox says what to do); what it cost."""
        return runtime.run_round(agent_id)

    @app.task(name=TASK_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
    def task_job(
        self: Any,
        description: str | None = None,
        task_id: str | None = None,
        tags: list[str] | None = None,
    ) -> str | None:
        """Take a task: an existing pending one (`task_id`) or a new one (`description`).

        Sent to a role queue by `tt assign --role`, or by any plain Celery client to an
        agent's or a role's queue. Runs in whichever agent worker consumes that queue.
        """
        queue = (self.request.delivery_info or {}).get("routing_key") or runtime.queue
        return runtime.take_task(queue, task_id=task_id, description=description, tags=tags)


def _warm_shutdown() -> None:
    """Celery's warm shutdown of this process: the running task finishes first."""
    os.kill(os.getpid(), signal.SIGTERM)


def run_worker(settings: Settings, agent_id: str, launch: str | None = None,
               revive: bool = False) -> int:
    """Run the agent's Celery worker in this process until it shuts down.

    `launch`: the token `tt spawn` / `tt restart` gave this start (a newer start, a
    kill or a close since then makes it stand down). `revive`: started by hand (`tt
    worker`), which brings a stopped, cold or errored agent back.
    """
    from celery import signals

    go_private()  # logs and prompts hold task text: the user's alone

    from tinytown.celery_app import make_app

    try:  # never start the town's Redis from here: after `tt down` it stays down
        agent = Store(connect(settings, start=False), settings.town).require_agent(agent_id)
    except RedisUnreachable as exc:
        log.error("not starting the worker: %s", exc)
        return EXIT_REDIS_UNREACHABLE
    runtime = WorkerRuntime(settings, agent, shutdown=_warm_shutdown, launch=launch,
                            revive=revive)
    reason = runtime.unwanted(agent)
    if reason is not None:
        log.warning("not starting the worker of %s: %s", agent.name, reason)
        return 0
    held = runtime.held_elsewhere()
    if held is not None:
        log.error("not starting the worker of %s: %s", agent.name, held)
        return 1
    app = make_app(settings)
    register_tasks(app, runtime)
    signals.worker_init.connect(lambda **_: runtime.on_init(), weak=False)
    signals.worker_ready.connect(lambda sender, **_: runtime.on_ready(sender), weak=False)
    signals.worker_shutting_down.connect(lambda **_: runtime.on_shutting_down(), weak=False)
    signals.worker_shutdown.connect(lambda **_: runtime.on_shutdown(), weak=False)
    runtime.logs.mkdir(parents=True, exist_ok=True)
    argv = worker_flags(runtime.queues, runtime.hostname,
                        settings.supervisor.heartbeat_interval_secs,
                        runtime.logs / "worker.log")
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    except StandDown as exc:  # from on_init: killed, closed, superseded or held meanwhile
        log.warning("the worker of %s stands down: %s", agent.name, exc)
        return exc.code
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tinytown.worker")
    parser.add_argument("--town", required=True, help="the town's root folder")
    parser.add_argument("--launch", help="the launch token `tt spawn` or `tt restart` gave")
    parser.add_argument("agent_id")
    args = parser.parse_args(argv)
    settings = Settings.load(Path(args.town))
    sys.exit(run_worker(settings, args.agent_id, launch=args.launch))
