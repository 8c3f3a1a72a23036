"""The baselines of scripts/bench: a plain Celery app and a raw redis-py echo process.

    celery -A bench_baseline worker ...        (scripts/ on PYTHONPATH; env below)
    python scripts/bench_baseline.py echo SOCKET INBOX REPLIES

The Celery app uses the very settings dict Tinytown's app starts from
(tinytown.config.celery_settings) and the bench starts its workers with the same flags
as tinytown.worker.agent_worker.run_worker, so the only difference measured is what Tinytown adds.
Its one task, `bench.run`, starts a subprocess (the argv it is given, the prompt on
stdin) the plain way and then reports "done" on a Redis list.

Environment: BENCH_BROKER (redis+socket:// URL), BENCH_SOCKET (the Redis socket path),
BENCH_PREFIX (key prefix of everything the baseline keeps in Redis).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

PREFIX = os.environ.get("BENCH_PREFIX", "bench-baseline:")
READY_LIST = PREFIX + "ready"

try:
    from tinytown.config.celery_settings import CELERY_SETTINGS
except ImportError:  # the same values, should Tinytown's layout change
    CELERY_SETTINGS = {
        "task_serializer": "json", "accept_content": ["json"], "result_serializer": "json",
        "task_ignore_result": True, "task_acks_late": True,
        "task_reject_on_worker_lost": True, "worker_prefetch_multiplier": 1,
        "worker_concurrency": 1, "worker_pool": "threads", "worker_send_task_events": True,
        "task_send_sent_event": False, "worker_hijack_root_logger": False,
        "broker_connection_retry_on_startup": True, "enable_utc": True, "timezone": "UTC",
    }

_redis: Any = None


def _r() -> Any:
    global _redis
    if _redis is None:
        import redis

        _redis = redis.Redis(unix_socket_path=os.environ["BENCH_SOCKET"], decode_responses=True)
    return _redis


def worker_argv(python: str, queue: str, hostname: str, heartbeat: int, logfile: str) -> list[str]:
    """A bare Celery worker with exactly the flags that
    tinytown.worker.agent_worker.run_worker passes."""
    from pathlib import Path

    from tinytown.worker.agent_worker import worker_flags

    return [python, "-m", "celery", "-A", "bench_baseline",
            *worker_flags([queue], hostname, heartbeat, Path(logfile))]


if os.environ.get("BENCH_BROKER"):
    from celery import Celery, signals

    app = Celery("bench_baseline", broker=os.environ["BENCH_BROKER"])
    _prefix = {"global_keyprefix": PREFIX + "celery:"}
    app.conf.update(
        CELERY_SETTINGS,
        broker_transport_options=_prefix,
        control_exchange="bench-baseline.control",
        event_exchange="bench-baseline.events",
        task_default_queue="bench-baseline.default",
    )

    @app.task(name="bench.run", acks_late=True, reject_on_worker_lost=True)
    def run(task_id: str, argv: list[str], prompt: str, done_list: str) -> None:
        """Start the CLI as a plain subprocess, prompt on stdin; then report done."""
        env = dict(os.environ)
        env["TINYTOWN_TASK_ID"] = task_id
        env["TINYTOWN_ROUND"] = "1"
        subprocess.run(argv, input=prompt.encode(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.STDOUT, env=env)
        _r().lpush(done_list, f"{task_id} {time.time():.6f}")

    @app.task(name="bench.stamp", acks_late=True, reject_on_worker_lost=True)
    def stamp(stamps_list: str) -> None:
        """Only note when the task body started: Celery's own hop, apply_async → body."""
        _r().lpush(stamps_list, f"{time.time():.6f}")

    @signals.worker_ready.connect
    def _ready(sender: Any = None, **_: Any) -> None:
        _r().lpush(READY_LIST, f"{sender.hostname if sender else '?'} {time.time():.6f}")


def echo(socket_path: str, inbox: str, replies: str) -> None:
    """Raw Redis: BLPOP a message, note when it arrived, LPUSH a reply naming that time."""
    import redis

    r = redis.Redis(unix_socket_path=socket_path, decode_responses=True)
    r.lpush(replies, "ready 0")
    while True:
        try:
            item = r.blpop([inbox], timeout=5)  # finite: redis-py may time a forever-read out
        except redis.exceptions.TimeoutError:
            continue  # a busy or frozen Redis (the crash phase): ask again
        except redis.exceptions.ConnectionError:
            return  # the bench's Redis is gone: the run is over, nothing to report
        if item is None:
            continue
        got = time.time()
        if item[1] == "quit":
            return
        r.lpush(replies, f"{got:.6f} {item[1]}")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "echo":
        echo(*sys.argv[2:])
    else:
        sys.exit(__doc__)
