"""/v1/missions: start one from a plan (the plan file's schema as JSON), list them, show
one in waves, cancel one, add a task to one (`tt mission ...`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from tinytown.core.apikeys import Scope
from tinytown.http import schemas as s
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.ops.facade import Town

router = APIRouter(prefix="/v1/missions", tags=["missions"])
TownDep = Annotated[Town, Depends(town_of)]
Name = Annotated[str, Path(min_length=1, max_length=64, description="The mission's name")]


@router.post("", status_code=201, dependencies=[needs(Scope.WRITE)],
             responses=responses(409))
def start_mission(body: s.StartMission, town: TownDep) -> s.MissionStatus:
    """Start a mission from a plan: every task created at once, each released when the
    tasks it comes after are completed (`tt mission start NAME --plan FILE`). 422 lists
    the plan's problems; 409 for a name taken or a review gate (not supported yet)."""
    started = town.start_mission(body.name, body.plan())
    return s.MissionStatus.model_validate(town.mission(started.name))


@router.get("", dependencies=[needs(Scope.READ)], responses=responses())
def list_missions(town: TownDep) -> list[s.Mission]:
    return [s.Mission.of(m) for m in town.missions()]


@router.get("/{name}", dependencies=[needs(Scope.READ)], responses=responses(404))
def mission_status(name: Name, town: TownDep) -> s.MissionStatus:
    """The mission and its tasks in waves: state, agent, cost, branch of each."""
    return s.MissionStatus.model_validate(town.mission(name))


@router.post("/{name}/cancel", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def cancel_mission(name: Name, town: TownDep) -> s.Mission:
    """Cancel it: its tasks not ended yet are cancelled."""
    return s.Mission.of(town.cancel_mission(name))


@router.post("/{name}/tasks", status_code=201, dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def add_mission_task(name: Name, body: s.AddMissionTask, town: TownDep) -> s.Task:
    """A task added while the mission runs (`tt mission add-task`)."""
    return s.Task.of(town.add_mission_task(name, body.text, body.agent, body.role,
                                           body.after, body.name))


@router.post("/{name}/approve", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def approve_mission(name: Name, body: s.Decision, town: TownDep) -> s.Mission:
    """A mission that awaits approval runs (`tt approve NAME`); 409 if it does not."""
    from tinytown.ops import approving

    return s.Mission.of(approving.approve_mission(town.context, name, body.note, by="api"))


@router.post("/{name}/reject", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def reject_mission(name: Name, body: s.Decision, town: TownDep) -> s.Mission:
    """A mission that awaits approval is cancelled (`tt reject NAME`); 409 if it does
    not await approval."""
    from tinytown.ops import approving

    return s.Mission.of(approving.reject_mission(town.context, name, body.note, by="api"))
