"""/v1/missions: start one from a plan (the plan file's schema as JSON), list them, show
one in waves, cancel one, add a task to one (`tt mission ...`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import Field

from tinytown.core.apikeys import Scope
from tinytown.http import schemas as s
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.ops.facade import Town

router = APIRouter(prefix="/v1/missions", tags=["missions"])
TownDep = Annotated[Town, Depends(town_of)]
Name = Annotated[str, Path(min_length=1, max_length=64, description="The mission's name")]


class MissionSummary(s.Mission):
    """A mission in the list: its record, and its tasks counted by state and costed (the
    dashboard's progress "3/5 done" and "$0.42 of $5")."""

    task_states: dict[str, int] = Field(description="Its tasks counted by state")
    spent_usd: float = Field(description="What its tasks' rounds cost so far (USD, known)")


@router.post("", status_code=201, dependencies=[needs(Scope.WRITE)],
             responses=responses(409))
def start_mission(body: s.StartMission, town: TownDep) -> s.MissionStatus:
    """Start a mission from a plan: every task created at once, each released when the
    tasks it comes after are completed (`tt mission start NAME --plan FILE`). 422 lists
    the plan's problems; 409 for a name taken."""
    started = town.start_mission(body.name, body.plan())
    return s.MissionStatus.model_validate(town.mission(started.name))


@router.get("", dependencies=[needs(Scope.READ)], responses=responses())
def list_missions(town: TownDep) -> list[MissionSummary]:
    """The town's missions, each with its tasks counted by state and what they cost."""
    missions = town.missions()
    tasks = {t.id: t for t in town.list_tasks()} if missions else {}
    found = []
    for m in missions:
        mine = [tasks[i] for i in m.tasks.values() if i in tasks]
        states: dict[str, int] = {}
        for t in mine:
            states[t.state.value] = states.get(t.state.value, 0) + 1
        spent = sum(t.usage.cost_usd for t in mine if t.usage is not None)
        found.append(MissionSummary.model_validate({**m.to_wire(), "task_states": states,
                                                    "spent_usd": spent}))
    return found


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
