"""The town's Celery app: configuration only, one importable module.

    celery -A tinytown.celery_app inspect ping     (run inside the town's folder)

Every Celery key and pub/sub channel of a town lives under tt:<town>:celery: (kombu's
global_keyprefix), and the control and event exchanges carry the town's name, so towns
sharing one Redis never see each other's workers, commands, events or queues.

The round tasks are not registered here: an agent worker registers them on its own
app, bound to its runtime (`tinytown.worker.agent_worker`). Clients never need them: round
jobs are written straight into the queue (`tinytown.db.wakeup`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery

from tinytown.config.celery_settings import CELERY_SETTINGS
from tinytown.core import keys
from tinytown.core.settings import Settings, find_root
from tinytown.core.urls import celery_url


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
