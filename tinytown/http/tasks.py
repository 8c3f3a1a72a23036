"""/v1/tasks: list, show, assign (to an agent or a role, after other tasks), wait,
complete, fail, cancel, retry, unblock, a review's verdict."""

from __future__ import annotations

from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Path, Query, Request

from tinytown.core.apikeys import Scope
from tinytown.core.errors import UsageError
from tinytown.core.models import Gates, Priority, TaskState
from tinytown.core.models import Task as TaskRecord
from tinytown.http import schemas as s
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.ops.facade import Town

router = APIRouter(prefix="/v1/tasks", tags=["tasks"])
TownDep = Annotated[Town, Depends(town_of)]
TaskRef = Annotated[str, Path(min_length=1, max_length=64,
                              description="A task id or a prefix of 4+ characters")]
MAX_WAIT_SECS = 300.0  # a wait holds a thread of the server: longer ones wait again


@router.get("", dependencies=[needs(Scope.READ)], responses=responses(404))
def list_tasks(town: TownDep, state: TaskState | None = None,
               agent: Annotated[str | None, Query(max_length=200)] = None) -> list[s.Task]:
    """Tasks, oldest first; of one state, of one agent."""
    return [s.Task.of(t) for t in town.list_tasks(state=state, agent_ref=agent)]


@router.post("", status_code=201, dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409, 413))
def assign(body: s.Assign, town: TownDep) -> s.Task:
    """A task for an agent (`agent`), or queued for whichever agent of a role is free
    (`role`): `tt assign`."""
    if (body.agent is None) == (body.role is None):
        raise UsageError("give `agent` or `role` (one of them)")
    parent_id = town.task(body.parent_id).id if body.parent_id else None
    task = TaskRecord(body.description, tags=body.tags, parent_id=parent_id,
                      gates=Gates(**body.gates.model_dump()) if body.gates else None)
    if body.role is not None:
        queued, _live = town.assign_to_role(body.role, task, after=body.after)
        return s.Task.of(queued)
    assert body.agent is not None
    task_id = town.assign(body.agent, task, Priority.URGENT if body.urgent else Priority.NORMAL,
                          after=body.after)
    return s.Task.of(town.task(task_id))


@router.get("/{ref}", dependencies=[needs(Scope.READ)], responses=responses(404))
def show_task(ref: TaskRef, town: TownDep) -> s.Task:
    return s.Task.of(town.task(ref))


@router.get("/{ref}/wait", dependencies=[needs(Scope.READ)],
            responses=responses(404, 408, 409))
async def wait_task(
    ref: TaskRef, request: Request, town: TownDep,
    timeout: Annotated[float, Query(ge=0, le=MAX_WAIT_SECS)] = 30.0,
) -> s.Task:
    """The task once it is completed, failed or cancelled; 408 if it is still going
    after `timeout` seconds; 409 at once if its agent is stopped or errored (it runs
    only after a restart) (`tt assign --wait`)."""
    done = await anyio.to_thread.run_sync(town.wait_task, ref, timeout,
                                          limiter=request.app.state.waits)
    return s.Task.of(done)


@router.post("/{ref}/complete", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def complete(ref: TaskRef, town: TownDep, body: s.Complete | None = None) -> s.Task:
    return s.Task.of(town.complete_task(ref, body.result if body else None))


@router.post("/{ref}/fail", dependencies=[needs(Scope.WRITE)], responses=responses(404, 409))
def fail(ref: TaskRef, town: TownDep, body: s.Fail | None = None) -> s.Task:
    return s.Task.of(town.fail_task(ref, body.error if body else None))


@router.post("/{ref}/cancel", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def cancel(ref: TaskRef, town: TownDep) -> s.Task:
    return s.Task.of(town.cancel_task(ref))


@router.post("/{ref}/retry", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def retry(ref: TaskRef, town: TownDep, body: s.Retry | None = None) -> s.Task:
    """Run a failed or cancelled task again (`tt task retry`); the tasks blocked on it
    wait for it again."""
    return s.Task.of(town.retry_task(ref, to=body.to if body else None,
                                     role=body.role if body else None))


@router.post("/{ref}/unblock", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def unblock(ref: TaskRef, town: TownDep) -> s.Task:
    """A task blocked by a failed or cancelled dependency goes on without it
    (`tt task unblock`)."""
    return s.Task.of(town.unblock_task(ref))


@router.post("/{ref}/approve", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def approve_task(ref: TaskRef, body: s.Decision, town: TownDep) -> s.Task:
    """A task that awaits approval is completed, the tasks after it released (`tt
    approve`); 409 if it does not await approval."""
    from tinytown.ops import approving

    return s.Task.of(approving.approve_task(town.context, ref, body.note, by="api"))


@router.post("/{ref}/reject", dependencies=[needs(Scope.WRITE)],
             responses=responses(404, 409))
def reject_task(ref: TaskRef, body: s.Decision, town: TownDep) -> s.Task:
    """A task that awaits approval goes back to its agent with the note (`fail`: it
    fails) (`tt reject`); 409 if it does not await approval."""
    from tinytown.ops import approving

    return s.Task.of(approving.reject_task(town.context, ref, body.note, body.fail, by="api"))


@router.post("/{ref}/verdict", dependencies=[needs(Scope.WRITE)],
             responses=responses(403, 404, 409))
def verdict(ref: TaskRef, body: s.Verdict, town: TownDep) -> s.Task:
    """Answer a review by hand (`tt review`): `ref` is the review task or the task in
    review; approve moves it on, request_changes sends the notes to its author. Returns
    the reviewed task."""
    return s.Task.of(town.review_verdict(ref, body.verdict == "approve", body.notes))
