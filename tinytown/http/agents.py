"""/v1/agents: list, show, spawn, and the control plane (interrupt, resume, close,
kill, restart, prune), each one `Town` call."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from tinytown.core.apikeys import Scope
from tinytown.http import schemas as s
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.ops.facade import Town

router = APIRouter(prefix="/v1/agents", tags=["agents"])
TownDep = Annotated[Town, Depends(town_of)]
AgentRef = Annotated[str, Path(min_length=1, max_length=200,
                               description="Name, nickname, id or id prefix (4+)")]


@router.get("", dependencies=[needs(Scope.READ)], responses=responses())
def list_agents(town: TownDep) -> list[s.Agent]:
    """The town's agents, oldest first."""
    return [s.Agent.of(agent) for agent in town.list_agents()]


@router.get("/{ref}", dependencies=[needs(Scope.READ)], responses=responses(404))
def show_agent(ref: AgentRef, town: TownDep) -> s.Agent:
    return s.Agent.of(town.resolve(ref))


@router.post("", status_code=201, dependencies=[needs(Scope.ADMIN)],
             responses=responses(404, 409))
def spawn(body: s.Spawn, town: TownDep) -> s.Agent:
    """Record an agent and start its worker (`tt spawn`)."""
    handle = town.spawn_agent(
        body.name, cli=body.cli, role=body.role, nickname=body.nickname, parent=body.parent,
        fork=body.fork, max_rounds=body.max_rounds, scope=body.scope, start=body.start,
        session=body.session.value if body.session else None, resume=body.resume,
        budget=body.budget_usd, workspace=body.workspace, base=body.base)
    return s.Agent.of(handle.record())


@router.post("/prune", dependencies=[needs(Scope.ADMIN)], responses=responses())
def prune(body: s.Prune, town: TownDep) -> s.PruneReport:
    """Remove terminal agents (`tt prune`)."""
    report = town.prune(all_agents=body.all, force=body.force,
                        delete_branches=body.delete_branches)
    return s.PruneReport.model_validate(report)


def _control(action: str, scope: Scope, doc: str) -> None:
    def handler(ref: AgentRef, town: TownDep) -> s.Agent:
        return s.Agent.of(getattr(town.agent(ref), action)())

    handler.__doc__ = doc
    router.add_api_route(f"/{{ref}}/{action}", handler, methods=["POST"], name=action,
                         dependencies=[needs(scope)], responses=responses(404, 409),
                         response_model=s.Agent, summary=action.capitalize())


for _action, _scope, _doc in (
    ("interrupt", Scope.WRITE, "Pause: it takes no new round until resumed."),
    ("resume", Scope.WRITE, "Resume a paused agent."),
    ("close", Scope.WRITE, "Finish the current round, then shut down (cold)."),
    ("kill", Scope.ADMIN, "Stop at the start of its next round."),
    ("restart", Scope.ADMIN, "Bring a stopped, cold or errored agent back (resumed)."),
):
    _control(_action, _scope, _doc)


