"""A task queued for a role is recoverable from Redis alone: when its Celery job is
lost (a worker that froze or was cut off had taken it off the queue), the supervisor
offers it again, and an agent of the role runs it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

from tests.helpers import TownFixture, wait_until
from tinytown.core import keys
from tinytown.db.wakeup import queue_key


def test_a_role_task_whose_job_was_lost_is_offered_again(
    town_factory: Callable[..., TownFixture],
) -> None:
    town = town_factory(hb_timeout=1, hb_interval=1)
    r = town.tt("assign", "--role", "reviewer", "review it")
    assert r.code == 0, r
    task_id = r.out.strip()
    # the job is taken off the queue and never comes back (a frozen worker's BRPOP)
    assert town.town.redis.rpop(queue_key(town.name, keys.role_queue(town.name, "reviewer")))
    supervisor = subprocess.Popen([sys.executable, "-m", "tinytown.supervisor", "--town",
                                   str(town.root)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
    try:
        assert town.tt("spawn", "rev", "--role", "reviewer").code == 0
        wait_until(lambda: town.town.task(task_id).state.value == "completed", 40,
                   "the task to be offered again and run")
        assert not town.town.redis.zscore(keys.role_pending(town.name), task_id)
    finally:
        supervisor.terminate()
        supervisor.wait(20)
