"""Round jobs: Celery task messages that wake an agent's worker.

The inbox is the source of truth; a round job only says "look at your inbox". To keep
`tt send` and `tt assign` free of Celery's import cost, the job is written here as a
Celery protocol-2 message straight into the agent's kombu queue list, in the same
MULTI as the inbox write. A wake flag coalesces jobs: at most one is pending per
agent; the round clears the flag as it starts, so later messages wake it again.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import uuid
from typing import Any

from tinytown.core import keys
from tinytown.db import scripts

ROUND_TASK = "tinytown.round"
TASK_TASK = "tinytown.task"  # "take this task": for role queues and plain-Celery callers
WAKE_TTL_SECS = 300  # a lost job cannot block wake-ups for longer than this


def queue_key(town: str, queue: str) -> str:
    """The Redis list kombu's Redis transport keeps a queue in (priority 0)."""
    return keys.celery_prefix(town) + queue


def celery_message(
    task_name: str, args: list[Any], queue: str, kwargs: dict[str, Any] | None = None
) -> str:
    """A Celery protocol-2 task message as kombu's Redis transport stores it."""
    task_id = str(uuid.uuid4())
    kwargs = kwargs or {}
    body = json.dumps([args, kwargs, {"callbacks": None, "errbacks": None,
                                      "chain": None, "chord": None}])
    return json.dumps({
        "body": base64.b64encode(body.encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py", "task": task_name, "id": task_id, "shadow": None, "eta": None,
            "expires": None, "group": None, "group_index": None, "retries": 0,
            "timelimit": [None, None], "root_id": task_id, "parent_id": None,
            "argsrepr": repr(args or ()), "kwargsrepr": repr(kwargs),
            "origin": f"tt-{os.getpid()}@{socket.gethostname()}",
            "ignore_result": True, "replaced_task_nesting": 0,
            "stamped_headers": None, "stamps": {},
        },
        "properties": {
            "correlation_id": task_id, "reply_to": "", "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0, "body_encoding": "base64", "delivery_tag": str(uuid.uuid4()),
        },
    })


def enqueue_round(target: Any, town: str, agent_id: str, force: bool = False) -> None:
    """Queue a round job for the agent unless one is pending (`force`: queue anyway).

    `target` is the client or a pipeline (the job then commits with the caller's MULTI).
    """
    queue = keys.agent_queue(town, agent_id)
    scripts.run(target, scripts.ENQUEUE_ROUND, [keys.wake(town, agent_id), queue_key(town, queue)],
                [celery_message(ROUND_TASK, [agent_id], queue), WAKE_TTL_SECS,
                 "1" if force else "0"])


def enqueue_task_job(target: Any, town: str, queue: str, task_id: str | None = None,
                     **fields: Any) -> None:
    """Queue a `tinytown.task` job (take task `task_id`, or make one of `fields`:
    description, tags) on a role or agent queue; empty fields are left out."""
    kwargs = {k: v for k, v in {"task_id": task_id, **fields}.items() if v}
    target.lpush(queue_key(town, queue), celery_message(TASK_TASK, [], queue, kwargs=kwargs))
