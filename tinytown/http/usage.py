"""/v1/usage: tokens and cost of the town's rounds, grouped (`tt usage`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from tinytown.core.apikeys import Scope
from tinytown.http import schemas as s
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import responses
from tinytown.ops.facade import Town

router = APIRouter(prefix="/v1/usage", tags=["usage"])
TownDep = Annotated[Town, Depends(town_of)]
Filter = Annotated[str | None, Query(max_length=200)]


@router.get("", dependencies=[needs(Scope.READ)], responses=responses(404))
def usage(town: TownDep, agent: Filter = None, task: Filter = None,
          since: Annotated[str | None, Query(max_length=64, description=
                                             "This long ago (30m, 12h, 2d) or a time")] = None,
          by: Literal["agent", "task", "role", "day"] = "agent") -> s.UsageReport:
    """Tokens and cost of the rounds (of one agent or task, since a time), grouped."""
    return s.UsageReport.model_validate(town.usage(agent, task, since, by))
