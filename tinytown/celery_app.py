"""The town's Celery app, one importable module.

    celery -A tinytown.celery_app inspect ping     (run inside the town's folder)

Every Celery key and pub/sub channel of a town lives under tt:<town>:celery: (kombu's
global_keyprefix), and the control and event exchanges carry the town's name, so towns
sharing one Redis never see each other's workers, commands, events or queues.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery

from tinytown import keys
from tinytown.config.celery_settings import CELERY_SETTINGS
from tinytown.connection import celery_url
from tinytown.settings import Settings, find_root
from tinytown.wakeup import ROUND_TASK, TASK_TASK


def make_app(settings: Settings) -> Celery:
    town = settings.town
    broker = celery_url(settings)
    app = Celery(f"tinytown.{town}", broker=broker, backend=broker)
    # polling_interval: an idle worker re-issues its BRPOP every 2 s instead of every
    # second (a third of its idle CPU). It must stay well under Celery's 5 s socket
    # timeout at warm shutdown, which waits for the BRPOP in flight.
    prefix = {"global_keyprefix": keys.celery_prefix(town), "polling_interval": 2}
    app.conf.update(
        CELERY_SETTINGS,
        broker_transport_options=prefix,
        result_backend_transport_options=prefix,
        control_exchange=f"tt.{town}.control",
        event_exchange=f"tt.{town}.events",
        task_default_queue=f"tt.{town}.default",
    )
    app.tt_settings = settings

    @app.task(name=ROUND_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
    def round_task(self: Any, agent_id: str) -> None:
        """One round for an agent: run by that agent's worker (see tinytown.worker)."""
        from tinytown.worker import current_runtime

        runtime = current_runtime()
        if runtime is None:
            raise RuntimeError("tinytown.round runs only inside a tinytown agent worker")
        runtime.run_round(agent_id)

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
        from tinytown.worker import current_runtime

        runtime = current_runtime()
        if runtime is None:
            raise RuntimeError("tinytown.task runs only inside a tinytown agent worker")
        queue = (self.request.delivery_info or {}).get("routing_key") or runtime.queue
        return runtime.take_task(queue, task_id=task_id, description=description, tags=tags)

    return app


def _default_app() -> Celery:
    root = os.environ.get("TINYTOWN_TOWN_ROOT")
    return make_app(Settings.load(find_root(Path(root) if root else Path.cwd())))


def __getattr__(name: str) -> Any:
    # `celery -A tinytown.celery_app` looks up `app` (or `celery`) lazily here, so
    # importing this module to call make_app() needs no town.
    if name in ("app", "celery"):
        value = _default_app()
        globals()["app"] = globals()["celery"] = value
        return value
    raise AttributeError(name)
