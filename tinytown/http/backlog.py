"""/v1/backlog: tasks nobody was given yet, which people or agents claim."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tinytown.core.apikeys import Scope
from tinytown.core.models import Task as TaskRecord
from tinytown.http import schemas as s
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.http.tasks import TaskRef
from tinytown.ops.facade import Town

router = APIRouter(prefix="/v1/backlog", tags=["backlog"])
TownDep = Annotated[Town, Depends(town_of)]


@router.get("", dependencies=[needs(Scope.READ)], responses=responses())
def backlog(town: TownDep) -> list[s.Task]:
    """The backlog's tasks, oldest first."""
    return [s.Task.of(t) for t in town.backlog()]


@router.post("", status_code=201, dependencies=[needs(Scope.WRITE)],
             responses=responses(413))
def add(body: s.BacklogAdd, town: TownDep) -> s.Task:
    """Add a task (`pending`) to the backlog, for anyone or for one role."""
    task = town.backlog_add(TaskRecord(body.description, tags=body.tags), role=body.role)
    return s.Task.of(task)


@router.post("/{ref}/claim", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def claim(ref: TaskRef, body: s.Claim, town: TownDep) -> s.Task:
    """Assign a backlog task to an agent, atomically."""
    return s.Task.of(town.backlog_claim(ref, body.agent))


@router.delete("/{ref}", dependencies=[needs(Scope.WRITE)], responses=responses(404, 409))
def remove(ref: TaskRef, town: TownDep) -> s.Task:
    """Take a task out of the backlog; it is kept, as `cancelled`."""
    return s.Task.of(town.backlog_remove(ref))
