"""A host daemon's process: a Celery worker on the town's queue for this host, whose
one task ("look at your agents") nudges the daemon's loop, which runs in a thread.

Being a Celery worker of the town, a host shows in Flower and answers `celery
inspect`; clients reach it by writing a task message into its queue, without Celery
(`tinytown.db.host_store.nudge`). A warm shutdown (SIGTERM, Ctrl-C) drains the host first:
its agents finish their rounds and move to other hosts.
"""

from __future__ import annotations

import argparse
import logging
import re
import socket
import sys
import threading
from pathlib import Path

from tinytown.core import keys
from tinytown.core.errors import EXIT_REDIS_UNREACHABLE, EXIT_USAGE, HostNameTaken, RedisUnreachable
from tinytown.core.settings import Settings
from tinytown.db.host_store import HOST_WAKE_TASK
from tinytown.host.daemon import HostDaemon
from tinytown.system.private import go_private

log = logging.getLogger("tinytown.host")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
STOP_TIMEOUT_SECS = 600.0  # how long a stopping host waits for its agents' rounds


def check_name(name: str) -> str | None:
    """Why `name` cannot name a host (None: it can)."""
    if not _NAME.match(name):
        return (f"host name {name!r}: use letters, digits, '-' and '_' (up to 63),"
                " starting with a letter or digit")
    return None


def run_host(settings: Settings, name: str, max_agents: int = 0,
             labels: list[str] | None = None) -> int:
    """Run the host daemon in this process until it is stopped; the exit code."""
    from celery import signals

    from tinytown.celery_app import make_app

    go_private()
    try:
        daemon = HostDaemon(settings, name, max_agents, sorted(set(labels or [])))
        daemon.claim()
    except RedisUnreachable as exc:
        print(f"error: not starting the host: {exc}", file=sys.stderr)
        return EXIT_REDIS_UNREACHABLE
    except HostNameTaken as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    app = make_app(settings)

    @app.task(name=HOST_WAKE_TASK, ignore_result=True)
    def wake() -> None:
        """A client placed, woke or restarted an agent here: look now."""
        daemon.nudged.set()

    loop = threading.Thread(target=daemon.run, name="tinytown-host", daemon=True)

    def ready(**_: object) -> None:
        loop.start()

    def shutting_down(**_: object) -> None:
        daemon.stop()
        if loop.is_alive():
            loop.join(10)
        daemon.evacuate_all(STOP_TIMEOUT_SECS)

    signals.worker_ready.connect(ready, weak=False)
    signals.worker_shutting_down.connect(shutting_down, weak=False)
    logs = settings.logs_dir / "hosts"
    logs.mkdir(parents=True, exist_ok=True)
    argv = ["worker", "--queues", keys.host_queue(settings.town, name),
            # '+' is in no agent name: the supervisor never takes a host for an agent
            "--hostname", f"host+{name}@{socket.gethostname()}", "--pool", "threads",
            "--concurrency", "1", "--prefetch-multiplier", "1", "--without-gossip",
            "--without-mingle", "--heartbeat-interval",
            str(settings.supervisor.heartbeat_interval_secs), "--loglevel", "INFO",
            "--logfile", str(logs / f"{name}.log")]
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tinytown.host")
    parser.add_argument("--town", required=True, help="the town's root folder")
    parser.add_argument("--name", default=socket.gethostname())
    parser.add_argument("--max-agents", type=int, default=0)
    parser.add_argument("--labels", default="")
    args = parser.parse_args(argv)
    problem = check_name(args.name)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    settings = Settings.load(Path(args.town))
    labels = [x.strip() for x in args.labels.split(",") if x.strip()]
    sys.exit(run_host(settings, args.name, args.max_agents, labels))
