"""/healthz and /readyz, the only routes that need no key, and /openapi.json (which does)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from tinytown.core.apikeys import Scope
from tinytown.http import schemas as s
from tinytown.http.auth import needs, town_of
from tinytown.http.error_responses import error, responses
from tinytown.ops.facade import Town

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> s.Alive:
    """The server process answers (nothing else is checked)."""
    return s.Alive()


@router.get("/readyz", response_model=s.Ready, responses={503: {"model": s.Error}})
async def readyz(town: Annotated[Town, Depends(town_of)]) -> Any:
    """200 while the town's Redis answers and a supervisor leads; 503 with the reason."""
    health = await anyio.to_thread.run_sync(town.health)
    if not health.ready:
        return error(503, health.reason or "not ready")
    return s.Ready(ready=True, supervisor=health.leader)


@router.get("/openapi.json", dependencies=[needs(Scope.READ)], responses=responses(),
            include_in_schema=False)
def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())
