"""The supervisor's watch on questions to a person (`[missions] question_timeout_secs`):
a question unanswered that long gets a `question_timeout` event, once; a task of a
mission with a conductor also wakes the conductor with a message about it (it decides:
wait, plan around it, or answer). Otherwise the task keeps waiting: the event is all.

Cheap: each pass reads one range of `tt:<town>:questions:due` (a sorted set by when
each question was asked), which holds only the questions not reported yet.
"""

from __future__ import annotations

import logging

from tinytown.core.models import Task, utcnow
from tinytown.core.settings import Settings
from tinytown.db import mission_store, question_store
from tinytown.db.store import Store

log = logging.getLogger("tinytown.supervisor")


def conductor_of(store: Store, task: Task) -> str | None:
    """The agent id of the conductor of `task`'s mission (its `conductor` field names
    an agent), None when it has none."""
    mission = mission_store.get(store, task.mission) if task.mission else None
    if mission is None:
        return None
    named = getattr(mission, "conductor", None) or mission.extra.get("conductor")
    if not isinstance(named, str) or not named:
        return None
    found = store.name_owner(named)
    if found is None and store.get_agent(named) is not None:
        found = named
    return found


def watch(store: Store, settings: Settings) -> list[str]:
    """One pass: report the questions past the limit; the task ids reported."""
    limit = settings.missions.question_timeout_secs
    if not limit:
        return []
    reported = []
    for task in question_store.overdue(store, limit):
        waited = (utcnow() - task.asked_at).total_seconds() if task.asked_at else limit
        conductor = conductor_of(store, task)
        if question_store.report_overdue(store, task, waited, conductor):
            log.info("task %s: its question is unanswered after %.0fs%s", task.id, waited,
                     " (its conductor is told)" if conductor else "")
            reported.append(task.id)
    return reported
