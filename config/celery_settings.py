"""Celery settings every town's app starts from (tinytown.celery_app adds the town's
broker URL, key prefix and exchange names). Worker-side flags that have no config
key (pool, gossip, mingle) are set by tinytown.worker.
"""

from __future__ import annotations

from typing import Any

CELERY_SETTINGS: dict[str, Any] = {
    "task_serializer": "json",
    "accept_content": ["json"],
    "result_serializer": "json",
    # Rounds keep their outcome in the Task record: no result keys pile up.
    "task_ignore_result": True,
    "result_expires": 3600,
    # A round is not lost if its worker dies: ack after it ran, requeue if the
    # worker process is lost.
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "worker_concurrency": 1,
    "worker_pool": "threads",
    "worker_send_task_events": True,
    "task_send_sent_event": False,
    "worker_hijack_root_logger": False,
    "broker_connection_retry_on_startup": True,
    "broker_connection_max_retries": None,  # keep retrying: a cut link heals
    "worker_cancel_long_running_tasks_on_connection_loss": False,
    "enable_utc": True,
    "timezone": "UTC",
}
